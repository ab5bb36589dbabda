import { hasApiAccess } from '../shared/contracts/domain.js';
import { forbidden, paymentRequired, unauthorized, type ApiError } from '../shared/contracts/errors.js';
import type { Pool } from '../shared/db.js';
import type { SessionTokens } from '../shared/jwt.js';
import type { Logger } from '../shared/log.js';
import type { CachingAuthenticator } from '../shared/credential-cache.js';
import { sessionKey, validSessions, type Principal, type SessionRef } from '../shared/principal.js';
import { isApiKey } from '../shared/secrets.js';

export const LIVE_SCOPE = 'live.read';

export type LiveAccess =
  | { ok: true; principal: Principal; expiresAtMs: number | null }
  | { ok: false; error: ApiError };

/**
 * Decides an upgrade the way the REST API decides a request (docs/design.md, "REST API"): a valid session or
 * API key, the `live.read` scope, and for API keys a plan with API access.
 */
export function liveAuthorizer(authenticator: CachingAuthenticator): (bearer: string, source?: string) => Promise<LiveAccess> {
  // `source`: the upgrade's client address, which limits its failed look-ups (429 past the limit); re-checks give none.
  return async (bearer, source) => {
    const principal = bearer ? await authenticator.authenticate(bearer, source) : null;
    if (!principal) return { ok: false, error: unauthorized('a valid token or API key is required (?token=…)') };
    if (principal.kind === 'api_key' && !hasApiAccess(principal.plan ?? 'starter', principal.addons ?? [])) {
      return { ok: false, error: paymentRequired('API keys need the unlimited plan or the api add-on') };
    }
    if (!principal.scopes.includes(LIVE_SCOPE)) {
      return { ok: false, error: forbidden(`the ${LIVE_SCOPE} scope is required`) };
    }
    // A session's socket ends when its token does; an API key lives until revoked.
    return { ok: true, principal, expiresAtMs: principal.expiresAtMs ?? null };
  };
}

export interface LiveRecheckOptions {
  authorize: (bearer: string) => Promise<LiveAccess>;
  tokens: SessionTokens;
  /** The `fieldops_api` pool the sessions' users are read through. */
  pool: Pool;
  log: Logger;
}

/**
 * The re-check of open sockets' credentials (credential-sockets.ts): which are still good. A session is
 * verified here (signature, expiry, `live.read`), then its user and epoch are read with one query per
 * tenant for all its sessions; an API key is authorized as at the upgrade. A tenant or key that cannot be
 * checked now (the database away) counts as valid until the next pass.
 */
export function liveCredentialCheck({ authorize, tokens, pool, log }: LiveRecheckOptions): (credentials: string[]) => Promise<Set<string>> {
  return async (credentials) => {
    const valid = new Set<string>();
    const byTenant = new Map<string, { credential: string; session: SessionRef }[]>();
    for (const credential of credentials) {
      if (isApiKey(credential)) {
        const access = await authorize(credential).catch((err: unknown) => {
          log.warn({ err }, 'live: API key re-check failed; trying again later');
          return { ok: true } as const;
        });
        if (access.ok) valid.add(credential);
        continue;
      }
      let claims: ReturnType<SessionTokens['verify']>;
      try {
        claims = tokens.verify(credential);
      } catch {
        continue; // expired or not ours: ended
      }
      if (!claims.scopes.includes(LIVE_SCOPE)) continue;
      const sessions = byTenant.get(claims.tid) ?? [];
      sessions.push({ credential, session: { userId: claims.sub, epoch: claims.sv ?? 0 } });
      byTenant.set(claims.tid, sessions);
    }
    for (const [tenantId, sessions] of byTenant) {
      try {
        const still = await validSessions(pool, tenantId, sessions.map((s) => s.session));
        for (const { credential, session } of sessions) if (still.has(sessionKey(session.userId, session.epoch))) valid.add(credential);
      } catch (err) {
        log.warn({ err, tenantId }, 'live: session re-check failed; trying again later');
        for (const { credential } of sessions) valid.add(credential);
      }
    }
    return valid;
  };
}
