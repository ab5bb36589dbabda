import * as crypto from 'node:crypto';
import client from 'prom-client';
import { rateLimited } from './contracts/errors.js';
import type { LoginAttempts } from './login-attempts.js';
import type { Authenticator, Principal } from './principal.js';

export interface CachingAuthenticator {
  /**
   * The principal of a bearer token, or null when it is refused. `source` is the caller's address: when it
   * has failed `maxFailuresPerMin` look-ups this minute, this throws `rate_limited` (with `retryAfterS`).
   */
  authenticate(bearer: string, source?: string): Promise<Principal | null>;
  /**
   * Forgets every cached credential at once. Called after a change that can take a key's or a session's
   * rights away (revoking a key; disabling, re-roling or deleting a user, or changing their password) has
   * committed, so that this process answers 401 (or the narrower scopes)
   * from the next request on; other processes follow within the cache's lifetime.
   */
  credentialsChanged(): void;
  /** Forgets the refusals this process remembers (a credential was just created). */
  credentialsAdded(): void;
}

export interface CacheOptions {
  /** How long a valid credential's principal is served from memory (0: looked up every time). */
  ttlMs?: number;
  /** How long a refused credential is answered 401 from memory. */
  refusedTtlMs?: number;
  maxEntries?: number;
  /** Failed look-ups per source address, counted before each look-up (null: not limited). */
  failures?: LoginAttempts | null;
}

interface Entry {
  principal: Promise<Principal | null>;
  expiresAt: number;
  epoch: number;
  /** Settled as refused: kept `refusedTtlMs` and dropped by `credentialsAdded`. */
  refused: boolean;
  /** Still being looked up: callers with the same credential share the look-up (and its one claim), whatever `ttlMs`. */
  pending: boolean;
}

/**
 * The API's and the live upgrade's credentials (docs/design.md, "Credential look-ups"). API keys and sessions are checked in the database (a read as the token's tenant: the key, or the
 * session's user and epoch) on every request otherwise, which costs more than the request itself
 * A valid credential's principal is kept for `ttlMs` — about a
 * second, so a key revoked or a user disabled through another API process stops working within that —
 * and forgotten at once when this process changes credentials. Entries started before such a change (an
 * epoch ago) are never served, so a lookup racing the revocation cannot put the credential back. A
 * session is never served past its token's expiry.
 *
 * Refused credentials cost a look-up once per `refusedTtlMs`: they are remembered (by digest) that long.
 * Each look-up that is not served from memory first claims one of its source's failed look-ups, given
 * back when the credential proves valid (or the database could not answer): a source trying key after
 * key reaches the database `maxFailuresPerMin` times a minute at most, however concurrent, and then
 * gets 429, while credentials already in memory keep working. A lookup that fails (the database
 * unavailable) is neither cached nor counted.
 */
export function cachingAuthenticator(inner: Authenticator, options: CacheOptions = {}): CachingAuthenticator {
  const { ttlMs = 1000, refusedTtlMs = 5000, maxEntries = 10_000, failures = null } = options;
  const lookups = lookupCounter();
  const cache = new Map<string, Entry>();
  let epoch = 0;

  const lookUp = async (bearer: string, source: string | undefined): Promise<Principal | null> => {
    const key = source === undefined ? null : `ip:${source}`;
    if (failures && key !== null) {
      const claim = await failures.claim(key);
      if (!claim.allowed) {
        lookups.inc({ outcome: 'limited' });
        throw rateLimited(`too many failed authentications from this address; retry in ${claim.retryAfterS} s`, claim.retryAfterS);
      }
    }
    let principal: Principal | null;
    try {
      principal = await inner.authenticate(bearer);
    } catch (err) {
      lookups.inc({ outcome: 'error' });
      if (failures && key !== null) await failures.release(key);
      throw err;
    }
    lookups.inc({ outcome: principal ? 'valid' : 'refused' });
    if (principal && failures && key !== null) await failures.release(key);
    return principal;
  };

  return {
    authenticate(bearer, source) {
      const now = Date.now();
      // Keyed by a digest, so the process's memory holds no usable credentials.
      const id = digestOf(bearer);
      const hit = cache.get(id);
      if (hit && hit.epoch === epoch && (hit.pending || hit.expiresAt > now)) return hit.principal.then(unexpiredCopy);
      const entry: Entry = { principal: lookUp(bearer, source), expiresAt: now + ttlMs, epoch, refused: false, pending: true };
      cache.set(id, entry);
      entry.principal.then(
        (principal) => {
          entry.pending = false;
          entry.expiresAt = Date.now() + ttlMs;
          if (principal || cache.get(id) !== entry) return;
          entry.refused = true;
          entry.expiresAt = Date.now() + refusedTtlMs;
        },
        () => { if (cache.get(id) === entry) cache.delete(id); },
      );
      if (cache.size > maxEntries) sweep(cache, now, epoch, maxEntries);
      return entry.principal.then(unexpiredCopy);
    },
    credentialsChanged() {
      epoch++;
      cache.clear();
    },
    credentialsAdded() {
      for (const [id, entry] of cache) if (entry.refused) cache.delete(id);
    },
  };
}

/**
 * SHA-256 in base64. Node's one-shot `crypto.hash` (20.12+) makes no Hash object: about half the cost
 * of `createHash`, and this runs on every request.
 */
const digestOf: (bearer: string) => string = typeof (crypto as { hash?: unknown }).hash === 'function'
  ? (bearer) => (crypto as unknown as { hash(algorithm: string, data: string, encoding: 'base64'): string }).hash('sha256', bearer, 'base64')
  : (bearer) => crypto.createHash('sha256').update(bearer).digest('base64');

// Each request gets its own object: the auth layer fills in fields on the principal it is given.
const unexpiredCopy = (principal: Principal | null): Principal | null =>
  principal && !(principal.expiresAtMs !== undefined && principal.expiresAtMs <= Date.now()) ? { ...principal, scopes: [...principal.scopes] } : null;

/** Expired and stale entries go; if that is not enough (a flood of distinct tokens), everything does. */
function sweep(cache: Map<string, Entry>, now: number, epoch: number, maxEntries: number): void {
  for (const [key, entry] of cache) if (entry.expiresAt <= now || entry.epoch !== epoch) cache.delete(key);
  if (cache.size > maxEntries) cache.clear();
}

const LOOKUP_METRIC = 'fieldops_credential_lookups_total';

/** Look-ups that were not answered from memory, by outcome: what bad credentials cost the database. */
function lookupCounter(): client.Counter<'outcome'> {
  const existing = client.register.getSingleMetric(LOOKUP_METRIC);
  if (existing) return existing as client.Counter<'outcome'>;
  return new client.Counter({
    name: LOOKUP_METRIC,
    help: 'Credential look-ups (API requests, live upgrades) not answered from memory, by outcome (valid, refused, error; limited: refused before the database)',
    labelNames: ['outcome'],
  });
}
