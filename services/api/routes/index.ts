import type { FastifyPluginAsync } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../shared/config.js';
import type { SessionTokens } from '../../shared/jwt.js';
import type { CachingAuthenticator } from '../../shared/credential-cache.js';
import type { LoginAttempts } from '../../shared/login-attempts.js';
import type { PlanLookup } from '../plan-cache.js';
import type { Resolver } from '../../shared/webhook-targets.js';
import { authPlugin } from '../plugins/auth.js';
import { apiKeyRoutes } from './api-keys.js';
import { assetRoutes } from './assets.js';
import { authRoutes } from './auth.js';
import { clientRoutes } from './clients.js';
import { deviceRoutes } from './devices.js';
import { employeeRoutes } from './employees.js';
import { eventRoutes } from './events.js';
import { geofenceRoutes } from './geofences.js';
import { gpsEventRoutes } from './gps-events.js';
import { inspectionFormRoutes } from './inspection-forms.js';
import { inspectionTemplateRoutes } from './inspection-templates.js';
import { inventoryRoutes } from './inventory.js';
import { meRoutes } from './me.js';
import { purchaseOrderRoutes } from './purchase-orders.js';
import { quoteRoutes } from './quotes.js';
import { siteRoutes } from './sites.js';
import { timesheetRoutes } from './timesheets.js';
import { userRoutes } from './users.js';
import { warehouseRoutes } from './warehouses.js';
import { webhookRoutes } from './webhooks.js';
import { workOrderRoutes } from './work-orders.js';

/*
 * How to add a resource (say geofences):
 *
 * 1. services/api/repositories/geofences.ts — `createGeofenceRepository(db: Queryable)` returning the
 *    resource's queries. All SQL lives here. Insert `tenant_id` as `app_tenant()`; row-level security
 *    hides other tenants, so "not there" and "another tenant's" are the same null. Lists call
 *    `listPage(db, spec, query)` from ../pagination.ts with filters bound through `SqlParams` (../sql.ts).
 * 2. services/api/routes/geofences.ts — `export const geofenceRoutes: FastifyPluginAsyncTypebox`, paths
 *    relative to /v1 (`app.get('/geofences', …)`). Each route has:
 *      schema: { tags, summary, params: IdParams, querystring: listQuerySchema(SORT_FIELDS, filters),
 *                body: Type.Object({...}, { additionalProperties: false }),
 *                response: { 200: dataOf(Item) | listOf(Item), 201: dataOf(Item), 204: NoContent } }
 *      config: { scope: 'geofences.write' }   (required: a scope, `null` for any signed-in caller,
 *                                              or `public: true`; `apiAccess: true` makes it plan-gated, 402)
 *    and a handler that does its work in ONE `request.tenantDb(async (db) => …)` call (one pooled
 *    connection, the tenant set: on GET each statement is its own read-only transaction — one round
 *    trip, no writes —, otherwise one transaction) and throws `notFound('geofence')`, `badRequest(msg, issues)`,
 *    `conflict(msg)`, `forbidden(msg)` from ../errors.ts; the error handler renders the contract's shape.
 *    `request.principal` is the caller (tenantId, userId, scopes, plan). Validation is the schema's job.
 *    Writes (docs/design.md, "REST conventions"):
 *      - every POST declares `config.idempotent` (true; 'sealed' if the answer shows a secret; false if
 *        it changes nothing) and answers with `return reply.commit(201, async (db) => ({ data }))`:
 *        one transaction, Idempotency-Key claimed and the answer stored in it, the ETag set;
 *      - PATCH, DELETE and actions on one object honour If-Match: pass `request.ifMatch` to the
 *        repository, which calls `checkIfMatch(db, table, id, precondition, what)` (or `assertVersion`
 *        on the row it locked itself) before writing;
 *      - the item schema has `version: Version`; the table a `version` column and the bump trigger;
 *      - changes worth keeping go to `createHistory(db, type).record(…)`, events to `recordEvent(…)`
 *        (typed in ../outbox.ts), both inside the same transaction.
 * 3. Add the plugin to RESOURCE_ROUTES below. It appears in /v1/openapi.json and /v1/docs by itself.
 *
 * Pages outside /v1 (a static /map) register on the root app in ../app.ts, where no auth applies.
 */
const RESOURCE_ROUTES: FastifyPluginAsyncTypebox[] = [meRoutes, userRoutes, apiKeyRoutes, deviceRoutes,
  geofenceRoutes, gpsEventRoutes, timesheetRoutes, eventRoutes, clientRoutes, siteRoutes, employeeRoutes, assetRoutes,
  workOrderRoutes, quoteRoutes, warehouseRoutes, inventoryRoutes, purchaseOrderRoutes, inspectionTemplateRoutes,
  inspectionFormRoutes];

export interface ApiRoutesOptions {
  config: Config;
  authenticator: CachingAuthenticator;
  tokens: SessionTokens;
  plans: PlanLookup;
  loginAttempts: LoginAttempts;
  /** The DNS seam of the webhook URL check; default: the system resolver. */
  webhookResolver?: Resolver;
}

/** Everything under /v1: the auth layer (401/402/403), then each resource's routes. */
export const apiRoutes: FastifyPluginAsync<ApiRoutesOptions> = async (app, { config, authenticator, tokens, plans, loginAttempts, webhookResolver }) => {
  await app.register(authPlugin, { authenticator, plans });
  await app.register(authRoutes, { tokens, attempts: loginAttempts });
  for (const routes of RESOURCE_ROUTES) await app.register(routes);
  await app.register(webhookRoutes, { config, resolver: webhookResolver });
};
