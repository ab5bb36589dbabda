import Fastify, { LogController } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Redis } from 'ioredis';
import type { Config } from '../shared/config.js';
import type { Pool } from '../shared/db.js';
import type { SessionTokens } from '../shared/jwt.js';
import type { Logger } from '../shared/log.js';
import type { Authenticator } from '../shared/principal.js';
import type { Resolver } from '../shared/webhook-targets.js';
import { cachingAuthenticator } from '../shared/credential-cache.js';
import { createFileStore } from './files/create-file-store.js';
import type { FileStore } from './files/file-store.js';
import { outboxMailTransport, type MailTransport } from './mail.js';
import { loginAttempts } from '../shared/login-attempts.js';
import { createPlanLookup } from './plan-cache.js';
import { docsPlugin } from './plugins/docs.js';
import { errorsPlugin } from './plugins/errors.js';
import { healthPlugin } from './plugins/health.js';
import { jsonBodyPlugin } from './plugins/json-body.js';
import { metricsPlugin } from './plugins/metrics.js';
import { outputsPlugin } from './plugins/outputs.js';
import { rateLimitPlugin } from './plugins/rate-limit.js';
import { inFlightPlugin } from './plugins/in-flight.js';
import { requestIdPlugin } from './plugins/request-id.js';
import { newRequestId } from '../shared/contracts/errors.js';
import { lazyChildLogger } from './request-logger.js';
import { tenantDbPlugin } from './plugins/tenant-db.js';
import { validationPlugin } from './plugins/validation.js';
import { versionsPlugin } from './plugins/versions.js';
import { writesPlugin } from './plugins/writes.js';
import { apiRoutes } from './routes/index.js';
import { mapRoutes } from './routes/map.js';

/*
 * The REST API (docs/design.md, "REST API"), built in layers:
 *   1. cross-cutting: request ids, the error handler (every error → the contract's shape), JSON bodies,
 *      schema validation (strict bodies, coerced query strings), metrics, OpenAPI + Swagger UI, the per-tenant rate limit (Redis store), health checks,
 *      `request.tenantDb` (one transaction with the tenant set), `reply.commit` (the write path: one
 *      transaction, `Idempotency-Key`, the ETag), `request.ifMatch`, `app.mail` and `app.files` (mail transport, file store);
 *   2. /v1: the auth layer (bearer → principal; 401, then 402 for plan-gated use, then 403 for scopes);
 *   3. the resources' routes — see routes/index.ts for how to add one.
 * This function only builds; services/api/role.ts listens. Tests build through test/support/api.ts.
 */

declare module 'fastify' {
  interface FastifyInstance {
    /** Call after committing a change that takes an API key's or a session's rights away (see services/shared/credential-cache.ts). */
    credentialsChanged(): void;
    /** Call after creating a credential (an API key): no refusal remembered in this process may answer for it. */
    credentialsAdded(): void;
  }
}

export interface ApiDeps {
  config: Config;
  log: Logger;
  /** The `fieldops_api` pool: a role without BYPASSRLS that reads time series through views only. */
  pool: Pool;
  /** The rate-limit store shared by every API process; null counts in this process only. */
  redis: Redis | null;
  authenticator: Authenticator;
  tokens: SessionTokens;
  version?: string;
  /** The realtime port once listening in this process, for the live map's config (services/api/routes/map.ts). */
  realtimePort?: () => number | null;
  /** Outgoing mail; default: recorded in `mail_outbox` and logged (services/api/mail.ts). */
  mail?: MailTransport;
  /** Uploaded files; default: as FILE_STORAGE says (services/api/files/file-store.ts). */
  files?: FileStore;
  /** The DNS seam of the webhook URL check (services/shared/webhook-targets.ts); default: the system resolver. */
  webhookResolver?: Resolver;
}

export async function buildApiApp(deps: ApiDeps) {
  const { config, pool, redis } = deps;
  const app = Fastify({
    loggerInstance: deps.log,
    genReqId: newRequestId,
    // 5xx are logged by the error handler with their request id; /metrics counts every request. A log
    // line per request would cost about as much as serving it at the rates the API is built for.
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: true }),
    // So request.log, with its request id, is made only for a request that logs.
    childLoggerFactory: lazyChildLogger,
    trustProxy: config.TRUST_PROXY,
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // First: it wraps the handler of every route registered after it.
  await app.register(inFlightPlugin);
  await app.register(requestIdPlugin);
  await app.register(errorsPlugin);
  await app.register(jsonBodyPlugin);
  await app.register(validationPlugin);
  await app.register(metricsPlugin, { metricsToken: config.METRICS_TOKEN });
  await app.register(docsPlugin, { version: deps.version ?? '1.0.0' });
  await app.register(rateLimitPlugin, { config, redis });
  await app.register(healthPlugin, { pool, redis });
  await app.register(mapRoutes, { config, realtimePort: deps.realtimePort });
  await app.register(tenantDbPlugin, { pool });
  await app.register(versionsPlugin);
  await app.register(writesPlugin, { pool, sealSecret: config.jwtSecret });
  await app.register(outputsPlugin, { mail: deps.mail ?? outboxMailTransport(deps.log), files: deps.files ?? await createFileStore(config) });
  const authenticator = cachingAuthenticator(deps.authenticator, {
    failures: loginAttempts({
      redis, prefix: `${config.REDIS_PREFIX}authfail:`, max: config.AUTH_FAILURES_PER_MIN, windowMs: 60_000, log: deps.log,
    }),
  });
  app.decorate('credentialsChanged', () => authenticator.credentialsChanged());
  app.decorate('credentialsAdded', () => authenticator.credentialsAdded());
  await app.register(apiRoutes, {
    prefix: '/v1',
    config,
    authenticator,
    tokens: deps.tokens,
    plans: createPlanLookup(pool),
    webhookResolver: deps.webhookResolver,
    loginAttempts: loginAttempts({
      redis, prefix: `${config.REDIS_PREFIX}login:`, max: config.LOGIN_ATTEMPTS_PER_MIN, windowMs: 60_000, log: deps.log,
    }),
  });
  return app;
}

export type ApiApp = Awaited<ReturnType<typeof buildApiApp>>;
