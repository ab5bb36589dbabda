import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../shared/config.js';
import { EVENT_TYPES } from '../../shared/contracts/events.js';
import { badRequest, notFound } from '../../shared/contracts/errors.js';
import { newWebhookSecret, PING_EVENT } from '../../shared/contracts/webhooks.js';
import { sealedBox } from '../../shared/sealed-box.js';
import { checkTarget, parseAllowList, webhookUrlProblem, type Resolver } from '../../shared/webhook-targets.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createWebhookRepository, DELIVERY_SORT_FIELDS, WEBHOOK_SORT_FIELDS } from '../repositories/webhooks.js';
import { dataOf, IdParams, NoContent, Nullable, NullableTimestamp, StringEnum, Timestamp, Uuid, Version } from '../schemas.js';

const EventName = StringEnum([...EVENT_TYPES, '*'], { description: 'An event type, or `*` for every type' });

const Webhook = Type.Object({
  id: Uuid(),
  url: Type.String(),
  description: Nullable(Type.String()),
  events: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  failing_since: NullableTimestamp({ description: 'First failed attempt since the last successful one' }),
  disabled_at: NullableTimestamp({ description: 'When the platform turned the endpoint off after failing for too long' }),
  disabled_reason: Nullable(Type.String()),
  secret_rotated_at: NullableTimestamp(),
  previous_secret_expires_at: NullableTimestamp({ description: 'Until then deliveries carry a second signature made with the previous secret' }),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const WebhookWithSecret = Type.Object({
  ...Webhook.properties,
  secret: Type.String({ description: 'The signing secret (HMAC-SHA256 key): shown only in this answer' }),
});

const Attempt = Type.Object({
  attempt: Type.Integer(),
  started_at: Timestamp(),
  duration_ms: Type.Integer(),
  status_code: Nullable(Type.Integer()),
  error: Nullable(Type.String({ description: 'What went wrong without an answer: timeout, connection refused, address refused…' })),
  response_excerpt: Nullable(Type.String({ description: 'The first bytes of the answer' })),
});

const Delivery = Type.Object({
  id: Uuid({ description: 'X-Fieldops-Delivery: the same on every attempt' }),
  webhook_id: Uuid(),
  event: Type.String(),
  event_id: Nullable(Type.String({ description: 'The event\'s id (null for a ping)' })),
  status: StringEnum(['queued', 'pending', 'delivered', 'failed'], { description: 'queued: behind an earlier delivery of the same asset or object' }),
  attempt_count: Type.Integer(),
  next_attempt_at: NullableTimestamp(),
  last_status_code: Nullable(Type.Integer()),
  last_error: Nullable(Type.String()),
  created_at: Timestamp(),
  completed_at: NullableTimestamp(),
  attempts: Type.Array(Attempt),
});

const Url = Type.String({ minLength: 1, maxLength: 2000, description: 'http or https; private and loopback addresses are refused' });
const Events = Type.Array(EventName, { minItems: 1, maxItems: 100, uniqueItems: true });
const Description = Nullable(Type.String({ maxLength: 500 }));

const NewWebhook = Type.Object({
  url: Url,
  events: Events,
  enabled: Type.Optional(Type.Boolean()),
  description: Type.Optional(Description),
}, { additionalProperties: false });

const WebhookChanges = Type.Object({
  url: Type.Optional(Url),
  events: Type.Optional(Events),
  enabled: Type.Optional(Type.Boolean()),
  description: Type.Optional(Description),
}, { additionalProperties: false, minProperties: 1 });

/** In the query string: the action takes no body (an empty POST is the common call). */
const RotateQuery = Type.Object({
  overlap_s: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 * 86400, description: 'How long the previous secret keeps signing too, in seconds (default: WEBHOOK_SECRET_OVERLAP_S)' })),
});

const WebhookQuery = listQuerySchema(WEBHOOK_SORT_FIELDS, { enabled: Type.Optional(Type.Boolean()) });
const DeliveryQuery = listQuerySchema(DELIVERY_SORT_FIELDS, {
  status: Type.Optional(StringEnum(['queued', 'pending', 'delivered', 'failed'])),
  event: Type.Optional(Type.String({ maxLength: 100 })),
});

/** How long a create or a URL change waits for DNS before taking the URL as it is (delivery checks again). */
const CREATE_RESOLVE_TIMEOUT_MS = 2000;

export interface WebhookRoutesOptions {
  config: Config;
  /** The DNS seam (docs/design.md, "Webhooks"); default: the system resolver. */
  resolver?: Resolver;
}

/** `/v1/webhooks` and `/v1/webhook-deliveries` (docs/design.md, "Webhooks"): plan-gated like API keys. */
export const webhookRoutes: FastifyPluginAsyncTypebox<WebhookRoutesOptions> = async (app, { config, resolver }) => {
  const tags = ['webhooks'];
  const read = { scope: 'webhooks.read', apiAccess: true };
  const write = { scope: 'webhooks.write', apiAccess: true };
  const secrets = sealedBox(config.webhookSecretKey, 'webhook-secrets');
  const allow = parseAllowList(config.WEBHOOK_ALLOW_HOSTS);

  /** 400 for a URL a delivery could never go to; a name that does not resolve yet is let through. */
  const checkUrl = async (raw: string): Promise<void> => {
    const problem = webhookUrlProblem(raw);
    if (problem) throw badRequest(`url ${problem}`, [{ path: 'url', message: problem }]);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), CREATE_RESOLVE_TIMEOUT_MS); });
    const check = await Promise.race([checkTarget(new URL(raw), allow, resolver), timeout]).finally(() => clearTimeout(timer));
    if (check && !check.ok && !check.unresolved) throw badRequest(`url is not allowed: ${check.reason}`, [{ path: 'url', message: check.reason }]);
  };

  app.post('/webhooks', {
    schema: { tags, summary: 'Create a webhook endpoint (its secret is shown once)', body: NewWebhook, response: { 201: dataOf(WebhookWithSecret) } },
    config: { ...write, idempotent: 'sealed' },
  }, async (request, reply) => {
    await checkUrl(request.body.url);
    const secret = newWebhookSecret();
    return reply.commit(201, async (db) => {
      const webhook = await createWebhookRepository(db).create(request.body, secrets.seal(secret));
      return { data: { ...webhook, secret } };
    });
  });

  app.get('/webhooks', {
    schema: { tags, summary: 'List webhook endpoints (never their secrets)', querystring: WebhookQuery, response: { 200: listOf(Webhook) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createWebhookRepository(db).list(filters, { limit, offset, cursor, sort }));
  });

  app.get('/webhooks/:id', {
    schema: { tags, summary: 'Get a webhook endpoint', params: IdParams, response: { 200: dataOf(Webhook) } },
    config: read,
  }, async (request) => {
    const webhook = await request.tenantDb((db) => createWebhookRepository(db).find(request.params.id));
    if (!webhook) throw notFound('webhook');
    return { data: webhook };
  });

  app.patch('/webhooks/:id', {
    schema: { tags, summary: 'Change a webhook endpoint; enabling it again clears its failure record', params: IdParams, body: WebhookChanges, response: { 200: dataOf(Webhook) } },
    config: write,
  }, async (request, reply) => {
    if (request.body.url !== undefined) await checkUrl(request.body.url);
    return reply.commit(200, async (db) => {
      const webhook = await createWebhookRepository(db).update(request.params.id, request.body, request.ifMatch);
      if (!webhook) throw notFound('webhook');
      return { data: webhook };
    });
  });

  app.delete('/webhooks/:id', {
    schema: { tags, summary: 'Delete a webhook endpoint and its delivery log', params: IdParams, response: { 204: NoContent } },
    config: write,
  }, async (request, reply) => reply.commit(204, async (db) => {
    if (!(await createWebhookRepository(db).remove(request.params.id, request.ifMatch))) throw notFound('webhook');
  }));

  app.post('/webhooks/:id/rotate-secret', {
    schema: {
      tags,
      summary: 'Replace the signing secret (shown once); the previous one keeps signing for an overlap period',
      params: IdParams,
      querystring: RotateQuery,
      response: { 200: dataOf(WebhookWithSecret) },
    },
    config: { ...write, idempotent: 'sealed' },
  }, async (request, reply) => {
    const secret = newWebhookSecret();
    const overlapS = request.query.overlap_s ?? config.WEBHOOK_SECRET_OVERLAP_S;
    return reply.commit(200, async (db) => {
      const webhook = await createWebhookRepository(db).rotateSecret(request.params.id, secrets.seal(secret), overlapS, request.ifMatch);
      if (!webhook) throw notFound('webhook');
      return { data: { ...webhook, secret } };
    });
  });

  app.post('/webhooks/:id/test', {
    schema: { tags, summary: `Send a \`${PING_EVENT}\` delivery to the endpoint`, params: IdParams, response: { 202: dataOf(Delivery) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(202, async (db) => {
    const webhooks = createWebhookRepository(db);
    const webhook = await webhooks.find(request.params.id);
    if (!webhook) throw notFound('webhook');
    return { data: await webhooks.queuePing(webhook, request.principal.tenantId) };
  }));

  app.get('/webhooks/:id/deliveries', {
    schema: { tags, summary: 'The delivery log of an endpoint, newest first, with every attempt', params: IdParams, querystring: DeliveryQuery, response: { 200: listOf(Delivery) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb(async (db) => {
      const webhooks = createWebhookRepository(db);
      if (!(await webhooks.find(request.params.id))) throw notFound('webhook');
      return webhooks.listDeliveries(request.params.id, filters, { limit, offset, cursor, sort });
    });
  });

  app.get('/webhook-deliveries/:id', {
    schema: { tags, summary: 'Get a delivery with its attempts', params: IdParams, response: { 200: dataOf(Delivery) } },
    config: read,
  }, async (request) => {
    const delivery = await request.tenantDb((db) => createWebhookRepository(db).findDelivery(request.params.id));
    if (!delivery) throw notFound('webhook delivery');
    return { data: delivery };
  });

  app.post('/webhook-deliveries/:id/redeliver', {
    schema: { tags, summary: 'Send a delivered or failed delivery again (same delivery id, a fresh retry schedule)', params: IdParams, response: { 202: dataOf(Delivery) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(202, async (db) => {
    const delivery = await createWebhookRepository(db).redeliver(request.params.id);
    if (!delivery) throw notFound('webhook delivery');
    return { data: delivery };
  }));
};
