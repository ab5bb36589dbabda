import rateLimit from '@fastify/rate-limit';
import type { onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { addRouteHook } from './route-hooks.js';
import type { Redis } from 'ioredis';
import type { Config } from '../../shared/config.js';
import type { Plan } from '../../shared/contracts/domain.js';
import { rateLimited } from '../../shared/contracts/errors.js';
import { principalOf } from './auth.js';

export interface RateLimitOptions {
  config: Config;
  /** The shared store, so that every API process counts against one limit; null: this process only. */
  redis: Redis | null;
}

/** Requests per minute for a plan; 0 means no limit. */
export function planLimits(config: Config): Record<Plan, number> {
  return {
    starter: config.RATE_LIMIT_STARTER_PER_MIN,
    team: config.RATE_LIMIT_TEAM_PER_MIN,
    unlimited: config.RATE_LIMIT_UNLIMITED_PER_MIN,
  };
}

/**
 * Per-tenant limits by plan (docs/design.md, "REST API"), one counter per tenant across all routes and API
 * processes. Its hook is appended to each route's `onRequest` hooks, and the auth layer puts its own
 * first (plugins/auth.ts), so the tenant is known; public routes count per client address at the starter limit. The hook is ours, on every route
 * but those that opt out (`config.rateLimit: false`), as the plugin's `global` mode would add it, except
 * that a caller whose plan has no limit leaves at once: the plugin's own way (its allow list) costs
 * such a request a key, two awaits and two promises before it says so.
 */
export const rateLimitPlugin = fp<RateLimitOptions>(
  async (app, { config, redis }) => {
    const limits = planLimits(config);
    const limitOf = (plan: Plan | undefined) => limits[plan ?? 'starter'];
    await app.register(rateLimit, {
      global: false,
      hook: 'onRequest',
      timeWindow: 60_000,
      ...(redis ? { redis } : {}),
      nameSpace: `${config.REDIS_PREFIX}ratelimit:`,
      // Redis down must not take the API down with it; /readyz reports the outage.
      skipOnError: true,
      keyGenerator: (request) => {
        const principal = principalOf(request);
        return principal ? `tenant:${principal.tenantId.toLowerCase()}` : `ip:${request.ip}`;
      },
      max: async (request) => {
        const principal = principalOf(request);
        return principal ? limitOf(principal.plan) : config.RATE_LIMIT_STARTER_PER_MIN || 1000;
      },
      errorResponseBuilder: (_request, context) =>
        rateLimited(`rate limit of ${context.max} requests per minute exceeded; retry in ${context.after}`),
    });
    // The plugin's own hook: counts, sets the X-RateLimit headers, throws the 429.
    const limit = app.rateLimit();
    const limited: onRequestHookHandler = (request, reply, done) => {
      const principal = principalOf(request);
      if (principal !== null && limitOf(principal.plan) === 0) return done();
      limit.call(app, request, reply).then(() => done(), done);
    };
    app.addHook('onRoute', (route) => {
      if (route.config?.rateLimit === false) return;
      addRouteHook(route, 'onRequest', limited, 'last');
    });
  },
  { name: 'fieldops-rate-limit' },
);
