import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Queryable } from '../../shared/db.js';
import { notFound } from '../../shared/contracts/errors.js';
import { actorOf } from '../history.js';
import { IMAGE_BODY_LIMIT_BYTES, parseImageDataUrl } from '../images.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createWorkOrderRepository, WORK_ORDER_SORT_FIELDS } from '../repositories/work-orders.js';
import {
  dataOf, HistoryEntryFields, IdParams, NoContent, Nullable, NullableTimestamp, StringEnum, TimeRangeQuery, Timestamp, Uuid, Version,
} from '../schemas.js';
import { WORK_ORDER_PRIORITIES, WORK_ORDER_STATUSES } from '../../shared/contracts/domain.js';
import { MOVES } from '../work-order-states.js';

const Status = StringEnum(WORK_ORDER_STATUSES);
const Priority = StringEnum(WORK_ORDER_PRIORITIES);

export const WorkOrderItem = Type.Object({
  id: Uuid(),
  title: Type.String(),
  description: Nullable(Type.String()),
  priority: Priority,
  status: Status,
  client_id: Nullable(Uuid()),
  site_id: Nullable(Uuid()),
  asset_id: Nullable(Uuid()),
  assignee_id: Nullable(Uuid({ description: 'The employee doing the work' })),
  scheduled_start: NullableTimestamp(),
  scheduled_end: NullableTimestamp(),
  notes: Nullable(Type.String()),
  started_at: NullableTimestamp({ description: 'First start' }),
  completed_at: NullableTimestamp(),
  cancelled_at: NullableTimestamp(),
  archived_at: NullableTimestamp({ description: 'Set by DELETE; archived orders leave the default list' }),
  signoff: Nullable(Type.Object({
    signed_by: Type.String(),
    signed_at: Timestamp(),
    signature: Nullable(Type.Object({
      content_type: StringEnum(['image/png', 'image/jpeg']),
      size: Type.Integer({ description: 'Bytes; the image is at GET /v1/work-orders/{id}/signature' }),
    })),
  }, { description: 'Taken at completion' })),
  created_by: Nullable(Uuid({ description: 'The user who created it' })),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const Text = (maxLength: number) => Type.Optional(Nullable(Type.String({ minLength: 1, maxLength })));
const Time = (description: string) => Type.Optional(Nullable(Type.String({ format: 'date-time', description })));
const Title = Type.String({ minLength: 1, maxLength: 200 });
const Editable = {
  description: Text(20_000),
  priority: Type.Optional(Priority),
  client_id: Type.Optional(Nullable(Uuid())),
  site_id: Type.Optional(Nullable(Uuid())),
  asset_id: Type.Optional(Nullable(Uuid())),
  scheduled_start: Time('Start of the window; an order with one is scheduled'),
  scheduled_end: Time('End of the window, not before its start'),
  notes: Text(20_000),
};

const NewWorkOrder = Type.Object({
  title: Title,
  ...Editable,
  assignee_id: Type.Optional(Nullable(Uuid({ description: 'Assigns the new order at once' }))),
}, { additionalProperties: false });

const WorkOrderChanges = Type.Object({
  title: Type.Optional(Title),
  ...Editable,
  status: Type.Optional(StringEnum(WORK_ORDER_STATUSES, { description: 'Moves along the state machine as the actions do (completing needs …/complete)' })),
  assignee_id: Type.Optional(Nullable(Uuid({ description: 'Assigns a draft or scheduled order, reassigns one under way, null unassigns an assigned one' }))),
}, { additionalProperties: false, minProperties: 1 });

const StatusList = Type.String({
  pattern: `^(${WORK_ORDER_STATUSES.join('|')})(,(${WORK_ORDER_STATUSES.join('|')}))*$`,
  description: 'One status, or several separated by commas',
});

const WorkOrderQuery = listQuerySchema(WORK_ORDER_SORT_FIELDS, {
  status: Type.Optional(StatusList),
  assignee_id: Type.Optional(Uuid()),
  priority: Type.Optional(Priority),
  client_id: Type.Optional(Uuid()),
  site_id: Type.Optional(Uuid()),
  asset_id: Type.Optional(Uuid()),
  title: Type.Optional(Type.String({ maxLength: 200, description: 'Part of the title, any case' })),
  ...TimeRangeQuery,
  archived: Type.Optional(Type.Boolean({ description: 'true lists the archived (deleted) orders instead' })),
});

const HistoryEntry = Type.Object({
  ...HistoryEntryFields,
  from: Nullable(Status),
  to: Status,
}, { description: 'One change: the status from → to (equal when it stayed), who, when, and every field changed' });
const HistoryQuery = listQuerySchema(['version', 'changed_at'], {});

const Assign = Type.Object({ employee_id: Uuid({ description: 'The employee to do the work' }) }, { additionalProperties: false });
const Complete = Type.Object({
  signed_by: Type.String({ minLength: 1, maxLength: 200, description: 'Who signed the work off' }),
  signature: Type.Optional(Type.String({ description: 'PNG or JPEG as a data URL (data:image/png;base64,…), at most 10 MiB' })),
}, { additionalProperties: false });

/** What each action does, for the documentation. */
const ACTION_SUMMARIES = {
  dispatch: 'The assignee is on the way (assigned → en_route)',
  start: 'Work begins (assigned | en_route → in_progress)',
  hold: 'Pause (scheduled | assigned | en_route | in_progress → on_hold)',
  resume: 'Back to where it was held (on_hold → that status)',
  cancel: 'Cancel an open order (→ cancelled, final)',
} as const;

const EmptyBody = Type.Object({}, { additionalProperties: false });

/** `/v1/work-orders`: the jobs, their state machine (../work-order-states.ts), history and sign-off. */
export const workOrderRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['work-orders'];
  const read = { scope: 'work_orders.read' };
  const write = { scope: 'work_orders.write' };
  const orders = (request: FastifyRequest, db: Queryable) => createWorkOrderRepository(db, actorOf(request.principal));
  const illegal = 'An illegal move is 409 `conflict` naming the current status.';

  app.post('/work-orders', {
    schema: {
      tags,
      summary: 'Create a work order',
      description: 'It is `draft`, or `scheduled` with a `scheduled_start`, or `assigned` with an `assignee_id`. Emits `work_order.created`.',
      body: NewWorkOrder,
      response: { 201: dataOf(WorkOrderItem) },
    },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(201, async (db) => {
    const b = request.body;
    return {
      data: await orders(request, db).create({
        title: b.title, description: b.description ?? null, priority: b.priority ?? 'normal', client_id: b.client_id ?? null,
        site_id: b.site_id ?? null, asset_id: b.asset_id ?? null, scheduled_start: b.scheduled_start ?? null,
        scheduled_end: b.scheduled_end ?? null, notes: b.notes ?? null, assignee_id: b.assignee_id ?? null,
      }),
    };
  }));

  app.get('/work-orders', {
    schema: {
      tags,
      summary: 'List work orders, newest first',
      description: '`from`/`to` bound the window\'s start (the creation time of an unscheduled order). Archived orders only with `archived=true`.',
      querystring: WorkOrderQuery,
      response: { 200: listOf(WorkOrderItem) },
    },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => orders(request, db).list(filters, { limit, offset, cursor, sort }));
  });

  app.get('/work-orders/:id', {
    schema: { tags, summary: 'Get a work order', params: IdParams, response: { 200: dataOf(WorkOrderItem) } },
    config: read,
  }, async (request) => {
    const order = await request.tenantDb((db) => orders(request, db).find(request.params.id));
    if (!order) throw notFound('work order');
    return { data: order };
  });

  app.patch('/work-orders/:id', {
    schema: {
      tags,
      summary: 'Change a work order',
      description: `\`status\` and \`assignee_id\` move along the state machine like the actions. ${illegal} An archived order is 409.`,
      params: IdParams,
      body: WorkOrderChanges,
      response: { 200: dataOf(WorkOrderItem) },
    },
    config: write,
  }, async (request, reply) => reply.commit(200, async (db) => ({
    data: await orders(request, db).update(request.params.id, request.body, request.ifMatch),
  })));

  app.delete('/work-orders/:id', {
    schema: { tags, summary: 'Archive a work order (kept with its history; GET still finds it)', params: IdParams, response: { 204: NoContent } },
    config: write,
  }, async (request, reply) => reply.commit(204, async (db) => {
    if (!(await orders(request, db).archive(request.params.id, request.ifMatch))) throw notFound('work order');
  }));

  app.post('/work-orders/:id/assign', {
    schema: {
      tags,
      summary: 'Assign to an employee (draft | scheduled → assigned)',
      description: `Emits \`work_order.assigned\`. ${illegal} To reassign an order under way, PATCH its \`assignee_id\`.`,
      params: IdParams,
      body: Assign,
      response: { 200: dataOf(WorkOrderItem) },
    },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(200, async (db) => ({
    data: await orders(request, db).act(request.params.id, 'assign', request.body, request.ifMatch),
  })));

  for (const action of ['dispatch', 'start', 'hold', 'resume', 'cancel'] as const) {
    app.post(`/work-orders/:id/${action}`, {
      schema: {
        tags,
        summary: ACTION_SUMMARIES[action],
        description: `Allowed from ${MOVES[action].from.join(', ')}.${action === 'start' ? ' Emits `work_order.started`.' : ''} ${illegal}`,
        params: IdParams,
        body: EmptyBody,
        response: { 200: dataOf(WorkOrderItem) },
      },
      config: { ...write, idempotent: true },
      // No body, or an empty one: many clients send `{}` or nothing with an action.
      preValidation: async (request) => {
        request.body ??= {};
      },
    }, async (request, reply) => reply.commit(200, async (db) => ({
      data: await orders(request, db).act(request.params.id, action, {}, request.ifMatch),
    })));
  }

  app.post('/work-orders/:id/complete', {
    schema: {
      tags,
      summary: 'Complete with a sign-off (in_progress → completed)',
      description: `The signature is a PNG or JPEG data URL (checked by its bytes), at most 10 MiB. Emits \`work_order.completed\`. ${illegal}`,
      params: IdParams,
      body: Complete,
      response: { 200: dataOf(WorkOrderItem) },
    },
    config: { ...write, idempotent: true },
    bodyLimit: IMAGE_BODY_LIMIT_BYTES,
  }, async (request, reply) => {
    const { signed_by, signature } = request.body;
    // Decoded and checked before the transaction: a bad image holds no connection.
    const image = signature === undefined ? null : parseImageDataUrl(signature, 'signature');
    return reply.commit(200, async (db) => ({
      data: await orders(request, db).complete(request.params.id, { signedBy: signed_by, signature: image }, request.ifMatch),
    }));
  });

  app.get('/work-orders/:id/history', {
    schema: {
      tags,
      summary: 'Every change of the order, oldest first: who, when, the status from → to, and the fields changed',
      params: IdParams,
      querystring: HistoryQuery,
      response: { 200: listOf(HistoryEntry) },
    },
    config: read,
  }, async (request) => {
    const page = await request.tenantDb((db) => orders(request, db).history(request.params.id, request.query));
    if (!page) throw notFound('work order');
    return page;
  });

  app.get('/work-orders/:id/signature', {
    schema: {
      tags,
      summary: 'The signature image of the sign-off',
      params: IdParams,
      response: { 200: Type.Unsafe<Buffer>({ type: 'string', format: 'binary', description: 'image/png or image/jpeg' }) },
    },
    config: read,
  }, async (request, reply) => {
    const image = await request.tenantDb((db) => orders(request, db).signature(request.params.id));
    if (!image) throw notFound('signature');
    return reply.type(image.contentType).header('cache-control', 'private, max-age=3600').send(image.bytes);
  });
};
