import type { Plan } from './contracts/domain.js';
import type { Pool } from './db.js';
import { readAsTenant, withTenant } from './db.js';
import type { SessionTokens } from './jwt.js';
import { apiKeyTenant, isApiKey, sha256 } from './secrets.js';


/** Who is calling: a user's session (JWT) or an API key, always bound to one tenant. */
export interface Principal {
  kind: 'user' | 'api_key';
  tenantId: string;
  userId: string;
  scopes: string[];
  role?: string;
  apiKeyId?: string;
  /** Known for API keys (their use is plan-gated); sessions load it when a route needs it. */
  plan?: Plan;
  addons?: string[];
  /** When a session's token expires (ms since the epoch); API keys have none. */
  expiresAtMs?: number;
}

export interface Authenticator {
  /** The principal of a bearer token, or null when the token is bad, expired, revoked or unknown. */
  authenticate(bearer: string): Promise<Principal | null>;
}

export function createAuthenticator(pool: Pool, tokens: SessionTokens): Authenticator {
  return {
    async authenticate(bearer) {
      if (isApiKey(bearer)) return authenticateApiKey(pool, bearer);
      let claims: ReturnType<SessionTokens['verify']>;
      try {
        claims = tokens.verify(bearer);
      } catch {
        return null;
      }
      if (!(await sessionStillValid(pool, claims.tid, claims.sub, claims.sv ?? 0))) return null;
      return {
        kind: 'user', tenantId: claims.tid, userId: claims.sub, role: claims.role, scopes: claims.scopes, expiresAtMs: claims.exp * 1000,
      };
    },
  };
}

/**
 * Sessions follow their user (docs/design.md, "Reliability and security"): a signed, unexpired token is
 * accepted only while its user exists, is enabled and still has the session epoch the token was signed
 * in — a new role or password, or disabling, bumps it. Callers cache the answer briefly (a second in
 * the API, the re-check interval on live sockets), which bounds how long a revoked session lasts.
 */
async function sessionStillValid(pool: Pool, tenantId: string, userId: string, epoch: number): Promise<boolean> {
  return (await validSessions(pool, tenantId, [{ userId, epoch }])).has(sessionKey(userId, epoch));
}

/** A session as its token names it: the user and the session epoch it was signed in. */
export interface SessionRef {
  userId: string;
  epoch: number;
}

export const sessionKey = (userId: string, epoch: number): string => `${userId}:${epoch}`;

/**
 * Of one tenant's sessions, the `sessionKey`s still valid — one statement however many there are, so
 * that live sockets re-check thousands of dispatchers' sessions with a query per tenant.
 */
export async function validSessions(pool: Pool, tenantId: string, sessions: SessionRef[]): Promise<Set<string>> {
  const userIds = [...new Set(sessions.map((s) => s.userId).filter((id) => UUID.test(id)))];
  if (!UUID.test(tenantId) || userIds.length === 0) return new Set();
  // A read: one round trip (the tenant set with it), not a transaction's begin and commit around it.
  return readAsTenant(pool, tenantId, async (db) => {
    const { rows } = await db.query<{ id: string; session_epoch: number }>({
      name: 'fieldops_session_epochs',
      text: 'select id, session_epoch from users where id = any ($1::uuid[]) and disabled_at is null',
      values: [userIds],
    });
    return new Set(rows.map((row) => sessionKey(row.id, row.session_epoch)));
  });
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function authenticateApiKey(pool: Pool, key: string): Promise<Principal | null> {
  const tenantId = apiKeyTenant(key);
  if (!tenantId) return null;
  // A read in one round trip; the rare use stamp (below) is a write of its own.
  const row = await readAsTenant(pool, tenantId, async (db) => {
    // A key's scopes are its own within its owner's current role's: demoting the owner narrows the key.
    const { rows } = await db.query<ApiKeyRow>({
      name: 'fieldops_api_key_principal',
      text: `select k.id, k.user_id, array(select s from unnest(k.scopes) s where s = any (r.scopes)) as scopes, o.plan, o.addons,
              (k.last_used_at is null or k.last_used_at < now() - interval '1 minute') as stale
         from api_keys k
         join organizations o on o.id = k.tenant_id
         join users u on u.id = k.user_id and u.disabled_at is null
         join roles r on r.name = u.role
        where k.key_hash = $1 and k.revoked_at is null`,
      values: [sha256(key)],
    });
    return rows[0];
  });
  if (!row) return null;
  // Recorded at most once a minute per key: a write per request would cost more than it tells.
  if (row.stale) await withTenant(pool, tenantId, (db) => db.query('update api_keys set last_used_at = now() where id = $1', [row.id]));
  return { kind: 'api_key', tenantId, userId: row.user_id, apiKeyId: row.id, scopes: row.scopes, plan: row.plan, addons: row.addons };
}

interface ApiKeyRow { id: string; user_id: string; scopes: string[]; plan: Plan; addons: string[]; stale: boolean }
