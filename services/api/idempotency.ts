import { createHash } from 'node:crypto';
import type { Queryable } from '../shared/db.js';
import { sealedBox } from '../shared/sealed-box.js';
import { badRequest, conflict } from '../shared/contracts/errors.js';

/**
 * Idempotency keys (docs/design.md, "REST conventions"). A POST (or PATCH) carrying
 * `Idempotency-Key` claims (tenant, user, key) inside the transaction that makes its change, and its
 * answer is stored in that same transaction: a retry within 24 h gets the first answer (same status,
 * same body, `Idempotent-Replayed: true`) and changes nothing. Two identical requests racing meet on the
 * primary key: the second waits until the first commits, then replays it (or, if the first rolled back,
 * goes ahead itself). The same key with another method, path or body is 409 `conflict`. Only
 * successful answers are stored: a request that failed changed nothing, so its retry runs again.
 */

export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const REPLAYED_HEADER = 'idempotent-replayed';

export interface IdempotencyClaim {
  userId: string;
  key: string;
  fingerprint: Buffer;
  method: string;
  path: string;
  /** The answer shows a secret: store it encrypted. */
  sealed: boolean;
}

export interface StoredAnswer {
  status: number;
  /** The serialized JSON body, exactly as first sent. */
  payload: string;
}

/** Printable ASCII, at most 255 characters (a UUID is the usual choice). */
const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;

/** The claim for a request, or null when it carries no key; 400 for a key that is not one. */
export function idempotencyClaim(
  header: string | string[] | undefined,
  request: { userId: string; method: string; url: string; body: unknown },
  sealed: boolean,
): IdempotencyClaim | null {
  if (header === undefined) return null;
  const key = Array.isArray(header) ? header.join(',') : header;
  if (!KEY_PATTERN.test(key) || key.trim() === '') {
    throw badRequest('the Idempotency-Key header is not valid', [
      { path: 'Idempotency-Key', message: 'must be 1 to 255 printable ASCII characters' },
    ]);
  }
  const path = request.url;
  const fingerprint = createHash('sha256').update(`${request.method}\n${path}\n${JSON.stringify(request.body ?? null)}`).digest();
  return { userId: request.userId, key, fingerprint, method: request.method, path: path.split('?')[0]!, sealed };
}

interface StoredRow {
  fingerprint: Buffer;
  method: string;
  path: string;
  status: number | null;
  response: Buffer | null;
  sealed: boolean;
}

/**
 * The idempotency table's statements, under the tenant set on `db`. `secret` keys the AES-256-GCM seal
 * of answers that show a secret (derived from the session-signing secret, which every API process shares).
 */
export function createIdempotencyStore(secret: string) {
  const { seal, open } = sealedBox(secret, 'idempotency-responses');

  return {
    /**
     * Claims the key for this transaction (an expired use is replaced); when it was used already,
     * returns that first answer instead, or throws 409 if it was used for another request.
     */
    async claim(db: Queryable, claim: IdempotencyClaim): Promise<StoredAnswer | null> {
      for (let attempt = 0; attempt < 3; attempt++) {
        const { rowCount } = await db.query({
          name: 'fieldops_idempotency_claim',
          text: `insert into idempotency_keys as k (tenant_id, user_id, key, fingerprint, method, path, sealed)
                 values (app_tenant(), $1, $2, $3, $4, $5, $6)
                 on conflict (tenant_id, user_id, key) do update
                   set fingerprint = excluded.fingerprint, method = excluded.method, path = excluded.path,
                       sealed = excluded.sealed, status = null, response = null, created_at = now()
                   where k.created_at < now() - idempotency_ttl()`,
          values: [claim.userId, claim.key, claim.fingerprint, claim.method, claim.path, claim.sealed],
        });
        if (rowCount) return null;
        const { rows } = await db.query<StoredRow>(
          `select fingerprint, method, path, status, response, sealed from idempotency_keys
            where tenant_id = app_tenant() and user_id = $1 and key = $2`,
          [claim.userId, claim.key],
        );
        const first = rows[0];
        // Purged between the two statements (it had just expired): claim again.
        if (!first) continue;
        if (!first.fingerprint.equals(claim.fingerprint)) {
          throw conflict(`this Idempotency-Key was used for another request (${first.method} ${first.path}) within the last 24 hours`, [
            { path: 'Idempotency-Key', message: 'was used for a different request' },
          ]);
        }
        if (first.status === null || first.response === null) {
          // Not reachable through the API (the answer is stored before the claim commits); kept explicit.
          throw conflict('a request with this Idempotency-Key is still in progress', [{ path: 'Idempotency-Key', message: 'is in use' }]);
        }
        return { status: first.status, payload: first.sealed ? open(first.response) : first.response.toString('utf8') };
      }
      throw conflict('this Idempotency-Key could not be claimed; retry', [{ path: 'Idempotency-Key', message: 'is in use' }]);
    },

    /** Stores the answer of a claimed key, in the same transaction as the change it answers. */
    async record(db: Queryable, claim: IdempotencyClaim, answer: StoredAnswer): Promise<void> {
      await db.query({
        name: 'fieldops_idempotency_record',
        text: `update idempotency_keys set status = $3, response = $4
                where tenant_id = app_tenant() and user_id = $1 and key = $2`,
        values: [claim.userId, claim.key, answer.status, claim.sealed ? seal(answer.payload) : Buffer.from(answer.payload, 'utf8')],
      });
    },
  };
}

export type IdempotencyStore = ReturnType<typeof createIdempotencyStore>;
