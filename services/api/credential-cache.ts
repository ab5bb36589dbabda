import { createHash } from 'node:crypto';
import type { Authenticator, Principal } from '../shared/principal.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Call after committing a change that takes an API key's or a session's rights away (see CachingAuthenticator). */
    credentialsChanged(): void;
  }
}

export interface CachingAuthenticator extends Authenticator {
  /**
   * Forgets every cached credential at once. Called after a change that can take a key's or a session's
   * rights away (revoking a key; disabling, re-roling or deleting a user, or changing their password) has
   * committed, so that this process answers 401 (or the narrower scopes)
   * from the next request on; other processes follow within the cache's lifetime.
   */
  credentialsChanged(): void;
}

interface Entry {
  principal: Promise<Principal | null>;
  expiresAt: number;
  epoch: number;
}

/**
 * API keys and sessions are checked in the database (their own transaction on another connection:
 * the key, or the session's user and epoch) on every request otherwise, which costs more than the
 * request itself. A valid credential's principal is kept for `ttlMs` — about a second, so a key revoked
 * or a user disabled through another API process stops working within that — and forgotten at once
 * when this process changes credentials. Entries started before such a change (an epoch ago) are never
 * served, so a lookup racing the revocation cannot put the credential back. Unknown or invalid
 * credentials are not cached: each is looked up again. A session is never served past its token's expiry.
 */
export function cachingAuthenticator(inner: Authenticator, ttlMs = 1000, maxEntries = 10_000): CachingAuthenticator {
  const cache = new Map<string, Entry>();
  let epoch = 0;
  return {
    authenticate(bearer) {
      const now = Date.now();
      // Keyed by a digest, so the process's memory holds no usable credentials.
      const id = createHash('sha256').update(bearer).digest('base64');
      const hit = cache.get(id);
      if (hit && hit.expiresAt > now && hit.epoch === epoch) return hit.principal.then(unexpiredCopy);
      const entry: Entry = { principal: inner.authenticate(bearer), expiresAt: now + ttlMs, epoch };
      cache.set(id, entry);
      entry.principal.then(
        (principal) => { if (!principal && cache.get(id) === entry) cache.delete(id); },
        () => { if (cache.get(id) === entry) cache.delete(id); },
      );
      if (cache.size > maxEntries) sweep(cache, now, epoch);
      return entry.principal.then(unexpiredCopy);
    },
    credentialsChanged() {
      epoch++;
      cache.clear();
    },
  };
}

// Each request gets its own object: the auth layer fills in fields on the principal it is given.
const unexpiredCopy = (principal: Principal | null): Principal | null =>
  principal && !(principal.expiresAtMs !== undefined && principal.expiresAtMs <= Date.now()) ? { ...principal, scopes: [...principal.scopes] } : null;

function sweep(cache: Map<string, Entry>, now: number, epoch: number): void {
  for (const [key, entry] of cache) if (entry.expiresAt <= now || entry.epoch !== epoch) cache.delete(key);
}
