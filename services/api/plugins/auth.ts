import type { FastifyContextConfig, FastifyRequest, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { addRouteHook } from './route-hooks.js';
import { hasApiAccess } from '../../shared/contracts/domain.js';
import { parseBearer } from '../../shared/contracts/credentials.js';
import type { Principal } from '../../shared/principal.js';
import type { CachingAuthenticator } from '../../shared/credential-cache.js';
import { forbidden, paymentRequired, unauthorized } from '../../shared/contracts/errors.js';
import type { PlanLookup } from '../plan-cache.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The scope a route needs (`devices.write`), or `null` for "any signed-in caller".
     * Every route under the auth layer must say one or the other, or set `public: true`.
     */
    scope?: string | null;
    /** No bearer token needed (login, docs). */
    public?: boolean;
    /** The route is API access itself (creating keys, webhooks): 402 unless the plan includes it. */
    apiAccess?: boolean;
  }
  interface FastifyRequest {
    /** The caller; set on every non-public route. Reading it on a public route throws. */
    readonly principal: Principal;
  }
}

/**
 * Where a request keeps its caller: a property declared on every request (a WeakMap entry per request
 * cost the auth hook more than the rest of its checks on a cached credential).
 */
const PRINCIPAL = Symbol('fieldops.principal');
type WithPrincipal = { [PRINCIPAL]?: Principal | null };

/** The caller when there is one (rate-limit keys run on public routes too). */
export const principalOf = (request: FastifyRequest): Principal | null => (request as WithPrincipal)[PRINCIPAL] ?? null;

export interface AuthOptions {
  authenticator: CachingAuthenticator;
  plans: PlanLookup;
}

/**
 * Authentication (401), plan gating (402) and scopes (403), in that order: the first of each route's own
 * `onRequest` hooks, so before the rate limit, parsing, validation and the handler. Hooks added to a `/v1`
 * context with `addHook('onRequest')` run before it (Fastify runs context hooks first): such a hook must
 * not need the caller nor do work for one (@fastify/multipart's, on the inspection-form routes, only
 * listens for the request's end). test/api/auth.test.ts sends every route of the OpenAPI document a request
 * without a credential. Registered inside the `/v1` context, so docs and health checks stay public.
 */
export const authPlugin = fp<AuthOptions>(
  async (app, { authenticator, plans }) => {
    app.decorateRequest(PRINCIPAL, null);
    app.decorateRequest('principal', {
      getter(this: FastifyRequest) {
        const principal = principalOf(this);
        if (!principal) throw new Error(`route ${this.routeOptions.url} is public: it has no principal`);
        return principal;
      },
    });

    // A hook on each route that needs a caller, with the route's config at hand: reading it per request
    // (`request.routeOptions`) builds an object each time. First among the route's own hooks, so the rate
    // limit, which goes last, runs after it and knows the tenant.
    app.addHook('onRoute', (route) => {
      const config = route.config ?? {};
      if (!config.public && config.scope === undefined) {
        throw new Error(`route ${route.method} ${route.url} must declare config.scope (a scope, or null) or config.public`);
      }
      if (config.public) return;
      const authenticate: onRequestHookHandler = (request) => authenticateRequest(request, config);
      addRouteHook(route, 'onRequest', authenticate, 'first');
    });

    async function authenticateRequest(request: FastifyRequest, config: FastifyContextConfig): Promise<void> {
      const bearer = parseBearer(request.headers.authorization);
      if (!bearer) throw unauthorized();
      // The address limits failed look-ups (429 past the limit; services/shared/credential-cache.ts).
      const principal = await authenticator.authenticate(bearer, request.ip);
      if (!principal) throw unauthorized('the token is invalid, expired or revoked');
      if (!principal.plan) {
        const org = await plans.get(principal.tenantId);
        if (!org) throw unauthorized('the organization of this token no longer exists');
        principal.plan = org.plan;
        principal.addons = org.addons;
      }
      (request as WithPrincipal)[PRINCIPAL] = principal;

      const apiAccess = hasApiAccess(principal.plan, principal.addons ?? []);
      if (principal.kind === 'api_key' && !apiAccess) throw paymentRequired('API keys need the unlimited plan or the api add-on');
      if (config.scope && !principal.scopes.includes(config.scope)) throw forbidden(`this needs the ${config.scope} scope`);
      if (config.apiAccess && !apiAccess) throw paymentRequired();
    }
  },
  { name: 'fieldops-auth' },
);
