import { hasApiAccess } from '../shared/contracts/domain.js';
import { forbidden, paymentRequired, unauthorized, type ApiError } from '../shared/contracts/errors.js';
import type { Authenticator, Principal } from '../shared/principal.js';

export const LIVE_SCOPE = 'live.read';

export type LiveAccess =
  | { ok: true; principal: Principal; expiresAtMs: number | null }
  | { ok: false; error: ApiError };

/**
 * Decides an upgrade the way the REST API decides a request (docs/design.md, "REST API"): a valid session or
 * API key, the `live.read` scope, and for API keys a plan with API access.
 */
export function liveAuthorizer(authenticator: Authenticator): (bearer: string) => Promise<LiveAccess> {
  return async (bearer) => {
    const principal = bearer ? await authenticator.authenticate(bearer) : null;
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
