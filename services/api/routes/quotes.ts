import type { FastifyRequest } from 'fastify';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { forbidden, notFound } from '../../shared/contracts/errors.js';
import { actorOf } from '../history.js';
import { IMAGE_BODY_LIMIT_BYTES, parseImageDataUrl } from '../images.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { QUOTE_STAGES } from '../quote-stages.js';
import { MAX_QUANTITY, MAX_UNIT_PRICE, QUANTITY_DECIMALS, TAX_RATE_DECIMALS } from '../quote-totals.js';
import { createQuoteRepository, QUOTE_SORT_FIELDS, type Quote as QuoteRecord, type QuoteFields } from '../repositories/quotes.js';
import { createWorkOrderRepository } from '../repositories/work-orders.js';
import { WorkOrderItem } from './work-orders.js';
import { dataOf, IdParams, NoContent, Nullable, NullableTimestamp, StringEnum, TimeRangeQuery, Timestamp, Uuid, Version, VersionEntryOf } from '../schemas.js';

const Stage = StringEnum(QUOTE_STAGES);
const Money = (description: string) => Type.Integer({ description: `${description}, in integer minor units (cents)` });

const LineInput = Type.Object({
  kind: StringEnum(['part', 'labour']),
  description: Type.String({ minLength: 1, maxLength: 1000 }),
  quantity: Type.Number({ exclusiveMinimum: 0, maximum: MAX_QUANTITY, description: `Up to ${QUANTITY_DECIMALS} decimals (1.5 hours)` }),
  unit_price: Type.Integer({ minimum: 0, maximum: MAX_UNIT_PRICE, description: 'Integer minor units (cents)' }),
  tax_rate: Type.Number({ minimum: 0, maximum: 100, description: `Percent, up to ${TAX_RATE_DECIMALS} decimals (8.875)` }),
}, { additionalProperties: false });

const Line = Type.Object({
  ...LineInput.properties,
  subtotal: Money('quantity × unit_price, rounded half-up'),
  tax: Money('subtotal × tax_rate / 100, rounded half-up'),
  total: Money('subtotal + tax'),
});

const Quote = Type.Object({
  id: Uuid(),
  number: Type.Integer({ description: 'The tenant\'s running quote number' }),
  revision: Type.Integer({ minimum: 1, description: 'Bumped by every amendment (POST /v1/quotes/{id}/revisions)' }),
  client_id: Nullable(Uuid()),
  title: Nullable(Type.String()),
  notes: Nullable(Type.String()),
  currency: Type.String({ description: 'ISO 4217' }),
  valid_until: NullableTimestamp({ description: 'When an open (sent or viewed) quote expires' }),
  stage: Stage,
  items: Type.Array(Line),
  subtotal: Money('Sum of the lines\' subtotals'),
  tax_total: Money('Sum of the lines\' tax'),
  total: Money('subtotal + tax_total'),
  sent_at: NullableTimestamp(),
  sent_to: Nullable(Type.String({ description: 'Where the quote email went; null when sent without one' })),
  viewed_at: NullableTimestamp(),
  accepted_at: NullableTimestamp(),
  rejected_at: NullableTimestamp(),
  rejection_reason: Nullable(Type.String()),
  expired_at: NullableTimestamp(),
  acceptance: Nullable(Type.Object({
    signed_by: Type.String(),
    signed_at: Timestamp(),
    ip: Nullable(Type.String({ description: 'The address the acceptance came from' })),
    signature: Type.Object({
      content_type: Type.String(),
      size: Type.Integer(),
    }, { description: 'The image: GET /v1/quotes/{id}/signature' }),
  })),
  work_order_id: Nullable(Uuid({ description: 'The work order this quote was converted into' })),
  created_by: Nullable(Uuid()),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

/** A date (`2026-12-31`: valid through that day, UTC) or a date-time. */
const ValidUntil = Type.Unsafe<string | null>({
  anyOf: [{ type: 'string', format: 'date' }, { type: 'string', format: 'date-time' }, { type: 'null' }],
  description: 'A date (valid through that day, UTC) or a date-time; an open quote expires then',
});

const Editable = {
  client_id: Type.Optional(Nullable(Uuid())),
  title: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  notes: Type.Optional(Nullable(Type.String({ maxLength: 20000 }))),
  currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217; default USD' })),
  valid_until: Type.Optional(ValidUntil),
};
const Items = Type.Array(LineInput, { minItems: 1, maxItems: 200 });

const NewQuote = Type.Object({ ...Editable, items: Items }, { additionalProperties: false });
const QuoteChanges = Type.Object({ ...Editable, items: Type.Optional(Items) }, { additionalProperties: false, minProperties: 1 });
const Amendment = Type.Object({ ...Editable, items: Type.Optional(Items) }, { additionalProperties: false });

const SendBody = Type.Object({
  to: Type.Optional(Type.String({ format: 'email', maxLength: 320, description: 'Default: the client\'s email' })),
  message: Type.Optional(Type.String({ maxLength: 5000, description: 'A note above the quote in the email' })),
}, { additionalProperties: false });
const AcceptBody = Type.Object({
  signed_by: Type.String({ minLength: 1, maxLength: 200 }),
  signature: Type.String({ description: 'data:image/png;base64,… or data:image/jpeg;base64,… (at most 10 MiB)' }),
}, { additionalProperties: false });
const RejectBody = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false });

const Conversion = Type.Object({
  title: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Default: the quote\'s title, or "Quote <number>"' })),
  priority: Type.Optional(StringEnum(['low', 'normal', 'high', 'urgent'])),
  site_id: Type.Optional(Uuid()),
  asset_id: Type.Optional(Uuid()),
  assignee_id: Type.Optional(Uuid()),
  scheduled_start: Type.Optional(Type.String({ format: 'date-time' })),
  scheduled_end: Type.Optional(Type.String({ format: 'date-time' })),
}, { additionalProperties: false });

const QuoteQuery = listQuerySchema(QUOTE_SORT_FIELDS, {
  stage: Type.Optional(Stage),
  client_id: Type.Optional(Uuid()),
  work_order_id: Type.Optional(Uuid()),
  ...TimeRangeQuery,
});

const RevisionParams = Type.Object({ id: Uuid(), revision: Type.Integer({ minimum: 1, maximum: 1_000_000 }) });
const Revision = Type.Object({
  revision: Type.Integer(),
  superseded_at: Timestamp(),
  superseded_by: Nullable(Uuid()),
  quote: Quote,
});

/** Quotes (DESIGN section 6; docs/design.md, "Quotes"). */
export const quoteRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['quotes'];
  const read = { scope: 'quotes.read' };
  const write = { scope: 'quotes.write' };
  const repository = (db: Parameters<typeof createQuoteRepository>[0], principal: Parameters<typeof actorOf>[0]) =>
    createQuoteRepository(db, { actor: actorOf(principal), mail: app.mail });

  app.get('/quotes', {
    schema: { tags, summary: 'List quotes', querystring: QuoteQuery, response: { 200: listOf(Quote) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => repository(db, request.principal).list(filters, { limit, offset, cursor, sort }));
  });

  app.post('/quotes', {
    schema: { tags, summary: 'Create a quote (a draft); the server computes the totals', body: NewQuote, response: { 201: dataOf(Quote) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(201, async (db) =>
    ({ data: await repository(db, request.principal).create({ ...fields(request.body), items: request.body.items }) })));

  app.get('/quotes/:id', {
    schema: { tags, summary: 'Get a quote with its acceptance', params: IdParams, response: { 200: dataOf(Quote) } },
    config: read,
  }, async (request) => {
    const quote = await request.tenantDb((db) => repository(db, request.principal).find(request.params.id));
    if (!quote) throw notFound('quote');
    return { data: quote };
  });

  app.patch('/quotes/:id', {
    schema: { tags, summary: 'Edit a draft quote (a sent one is amended with a new revision)', params: IdParams, body: QuoteChanges, response: { 200: dataOf(Quote) } },
    config: write,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const quote = await repository(db, request.principal).update(request.params.id, fields(request.body), request.ifMatch);
    if (!quote) throw notFound('quote');
    return { data: quote };
  }));

  app.delete('/quotes/:id', {
    schema: { tags, summary: 'Delete a draft quote', params: IdParams, response: { 204: NoContent } },
    config: write,
  }, async (request, reply) => reply.commit(204, async (db) => {
    if (!(await repository(db, request.principal).delete(request.params.id, request.ifMatch))) throw notFound('quote');
  }));

  app.post('/quotes/:id/send', {
    schema: { tags, summary: 'Send a draft to the client (quote.sent); the email goes to `to` or the client\'s address', params: IdParams, body: SendBody, response: { 200: dataOf(Quote) } },
    config: { ...write, idempotent: true },
    preValidation: noBodyIsEmpty,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const quote = await repository(db, request.principal).send(request.params.id, request.body, request.ifMatch);
    if (!quote) throw notFound('quote');
    return { data: quote };
  }));

  app.post('/quotes/:id/view', {
    schema: { tags, summary: 'Record that the client has seen the quote (sent → viewed)', params: IdParams, response: { 200: dataOf(Quote) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(200, async (db) => {
    const quote = await repository(db, request.principal).view(request.params.id, request.ifMatch);
    if (!quote) throw notFound('quote');
    return { data: quote };
  }));

  app.post('/quotes/:id/accept', {
    schema: { tags, summary: 'The client accepts with a signature (quote.accepted); signer, image, IP and time are kept', params: IdParams, body: AcceptBody, response: { 200: dataOf(Quote) } },
    config: { ...write, idempotent: true },
    bodyLimit: IMAGE_BODY_LIMIT_BYTES,
  }, async (request, reply) => {
    const signature = parseImageDataUrl(request.body.signature, 'signature');
    return reply.commit(200, async (db) => {
      const quote = await repository(db, request.principal).accept(request.params.id, { signedBy: request.body.signed_by, signature, ip: request.ip }, request.ifMatch);
      if (!quote) throw notFound('quote');
      return { data: quote };
    });
  });

  app.post('/quotes/:id/reject', {
    schema: { tags, summary: 'The client declines the quote', params: IdParams, body: RejectBody, response: { 200: dataOf(Quote) } },
    config: { ...write, idempotent: true },
    preValidation: noBodyIsEmpty,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const quote = await repository(db, request.principal).reject(request.params.id, request.body.reason ?? null, request.ifMatch);
    if (!quote) throw notFound('quote');
    return { data: quote };
  }));

  app.post('/quotes/:id/revisions', {
    schema: {
      tags,
      summary: 'Amend a quote: the current revision is kept, the quote continues as the next revision (a draft)',
      params: IdParams,
      body: Amendment,
      response: { 201: dataOf(Quote) },
    },
    config: { ...write, idempotent: true },
    preValidation: noBodyIsEmpty,
  }, async (request, reply) => reply.commit(201, async (db) => {
    const quote = await repository(db, request.principal).revise(request.params.id, fields(request.body), request.ifMatch);
    if (!quote) throw notFound('quote');
    return { data: quote };
  }));

  app.post('/quotes/:id/convert', {
    schema: {
      tags,
      summary: 'Make the work order of an accepted quote (once): its client, its lines as the description',
      description: 'Needs `work_orders.write` as well. Emits `work_order.created`; the quote keeps the order\'s id in `work_order_id`.',
      params: IdParams,
      body: Conversion,
      response: { 201: dataOf(WorkOrderItem) },
    },
    config: { ...write, idempotent: true },
    preValidation: noBodyIsEmpty,
  }, async (request, reply) => {
    if (!request.principal.scopes.includes('work_orders.write')) throw forbidden('converting a quote makes a work order: this needs the work_orders.write scope');
    return reply.commit(201, async (db) => {
      const quotes = repository(db, request.principal);
      const quote = await quotes.lockForConversion(request.params.id, request.ifMatch);
      if (!quote) throw notFound('quote');
      const b = request.body;
      const order = await createWorkOrderRepository(db, actorOf(request.principal)).create({
        title: b.title ?? quote.title ?? `Quote ${quote.number}`, description: workDescription(quote), priority: b.priority ?? 'normal',
        client_id: quote.client_id, site_id: b.site_id ?? null, asset_id: b.asset_id ?? null, scheduled_start: b.scheduled_start ?? null,
        scheduled_end: b.scheduled_end ?? null, notes: quote.notes, assignee_id: b.assignee_id ?? null,
      });
      await quotes.linkWorkOrder(quote, order.id);
      return { data: order };
    });
  });

  app.get('/quotes/:id/revisions', {
    schema: { tags, summary: 'The superseded revisions of a quote, as they were', params: IdParams, querystring: listQuerySchema(['revision'], {}), response: { 200: listOf(Revision) } },
    config: read,
  }, async (request) => request.tenantDb(async (db) => {
    const quotes = repository(db, request.principal);
    if (!(await quotes.find(request.params.id))) throw notFound('quote');
    return quotes.revisions(request.params.id, request.query);
  }));

  app.get('/quotes/:id/revisions/:revision', {
    schema: { tags, summary: 'One revision of a quote (the current one included)', params: RevisionParams, response: { 200: Type.Object({ data: Quote }) } },
    config: read,
  }, async (request) => {
    const quote = await request.tenantDb((db) => repository(db, request.principal).revision(request.params.id, request.params.revision));
    if (!quote) throw notFound('quote revision');
    return { data: quote };
  });

  app.get('/quotes/:id/signature', {
    schema: {
      tags,
      summary: 'The acceptance signature image (PNG or JPEG) of the current revision, or of ?revision=',
      params: IdParams,
      querystring: Type.Object({ revision: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })) }),
    },
    config: read,
  }, async (request, reply) => {
    const signature = await request.tenantDb((db) => repository(db, request.principal).signature(request.params.id, request.query.revision));
    if (!signature) throw notFound('signature');
    return reply.type(signature.contentType).header('cache-control', 'private, max-age=3600').send(signature.bytes);
  });

  app.get('/quotes/:id/history', {
    schema: { tags, summary: 'Every change of a quote: who, when, from, to', params: IdParams, querystring: listQuerySchema(['version', 'changed_at'], {}), response: { 200: listOf(VersionEntryOf(Quote)) } },
    config: read,
  }, async (request) => request.tenantDb(async (db) => {
    const quotes = repository(db, request.principal);
    if (!(await quotes.find(request.params.id))) throw notFound('quote');
    const page = await quotes.history(request.params.id, request.query);
    return { ...page, data: page.data.map(({ snapshot, ...entry }) => ({ ...entry, data: snapshot })) };
  }));
};

/** The work the quote sold, as the work order's description. */
function workDescription(quote: QuoteRecord): string {
  const lines = quote.items.map((item) => `- ${item.quantity} × ${item.description} (${item.kind})`);
  return [`From quote ${quote.number}${quote.revision > 1 ? `, revision ${quote.revision}` : ''}:`, ...lines].join('\n');
}

/** Actions whose body is optional: none at all (many clients send none) is the empty object. */
async function noBodyIsEmpty(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

/** The editable fields as the repository takes them: a date-only `valid_until` means through that day (UTC). */
function fields(body: { client_id?: string | null; title?: string | null; notes?: string | null; currency?: string; valid_until?: string | null; items?: QuoteFields['items'] }): QuoteFields {
  const { valid_until: validUntil, ...rest } = body;
  const result: QuoteFields = { ...rest };
  if (validUntil !== undefined) result.valid_until = validUntil === null ? null : parseValidUntil(validUntil);
  return result;
}

function parseValidUntil(value: string): Date {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return new Date(Date.parse(`${value}T00:00:00Z`) + 86_400_000);
  return new Date(value);
}
