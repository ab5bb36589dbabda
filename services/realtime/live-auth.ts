import type { SessionTokens } from '../shared/jwt.js';
import { hasApiAccess, type Authenticator, type Principal } from '../shared/principal.js';

export const LIVE_SCOPE = 'live.read';

export type LiveAccess =
  | { ok: true; principal: Principal; expiresAtMs: number | null }
  | { ok: false; status: 401 | 402 | 403; code: 'unauthorized' | 'payment_required' | 'forbidden'; message: string };

/**
 * Decides an upgrade the way the REST API decides a request (DESIGN section 6): a valid session or
 * API key, the `live.read` scope, and for API keys a plan with API access.
 */
export function liveAuthorizer(authenticator: Authenticator, tokens: SessionTokens): (bearer: string) => Promise<LiveAccess> {
  return async (bearer) => {
    const principal = bearer ? await authenticator.authenticate(bearer) : null;
    if (!principal) return { ok: false, status: 401, code: 'unauthorized', message: 'a valid token or API key is required (?token=…)' };
    if (principal.kind === 'api_key' && !hasApiAccess(principal.plan ?? 'starter', principal.addons ?? [])) {
      return { ok: false, status: 402, code: 'payment_required', message: 'API keys need the unlimited plan or the api add-on' };
    }
    if (!principal.scopes.includes(LIVE_SCOPE)) {
      return { ok: false, status: 403, code: 'forbidden', message: `the ${LIVE_SCOPE} scope is required` };
    }
    // A session's socket ends when its token does; an API key lives until revoked.
    const expiresAtMs = principal.kind === 'user' ? tokens.verify(bearer).exp * 1000 : null;
    return { ok: true, principal, expiresAtMs };
  };
}
