import type { FastifyRequest } from 'fastify';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Queryable } from '../../shared/db.js';
import { notFound } from '../../shared/contracts/errors.js';
import { actorOf } from '../history.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createPurchaseOrderRepository, PURCHASE_ORDER_SORT_FIELDS, PURCHASE_ORDER_STATUSES } from '../repositories/purchase-orders.js';
import { dataOf, IdParams, Nullable, NullableTimestamp, StringEnum, TimeRangeQuery, Timestamp, Uuid, Version } from '../schemas.js';
import { Movement } from './inventory.js';

const Status = StringEnum(PURCHASE_ORDER_STATUSES);
const Quantity = Type.Integer({ minimum: 1, maximum: 1_000_000_000 });

const LineInput = Type.Object({
  item_id: Uuid(),
  quantity: Quantity,
  unit_cost: Type.Integer({ minimum: 0, maximum: 1_000_000_000_000, description: 'Minor units per unit: the price the receipt books into stock' }),
}, { additionalProperties: false });

const PurchaseOrder = Type.Object({
  id: Uuid(),
  number: Type.Integer({ description: 'The tenant\'s running purchase-order number' }),
  supplier: Type.String(),
  warehouse_id: Uuid({ description: 'Where the parts are received' }),
  status: Status,
  lines: Type.Array(Type.Object({
    ...LineInput.properties,
    received_quantity: Type.Integer(),
    subtotal: Type.Integer({ description: 'quantity × unit_cost, minor units' }),
  })),
  total: Type.Integer({ description: 'Sum of the lines, minor units' }),
  notes: Nullable(Type.String()),
  ordered_at: NullableTimestamp(),
  received_at: NullableTimestamp({ description: 'When the last line was complete' }),
  cancelled_at: NullableTimestamp(),
  created_by: Nullable(Uuid()),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const Lines = Type.Array(LineInput, { minItems: 1, maxItems: 200 });
const NewOrder = Type.Object({
  supplier: Type.String({ minLength: 1, maxLength: 200 }),
  warehouse_id: Uuid(),
  lines: Lines,
  notes: Type.Optional(Nullable(Type.String({ maxLength: 20000 }))),
}, { additionalProperties: false });
const OrderChanges = Type.Object({
  supplier: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  warehouse_id: Type.Optional(Uuid()),
  lines: Type.Optional(Lines),
  notes: Type.Optional(Nullable(Type.String({ maxLength: 20000 }))),
}, { additionalProperties: false, minProperties: 1 });
const Receipt = Type.Object({
  lines: Type.Optional(Type.Array(Type.Object({ item_id: Uuid(), quantity: Quantity }, { additionalProperties: false }), {
    minItems: 1, maxItems: 200, description: 'What arrived; default: everything still outstanding',
  })),
}, { additionalProperties: false });

const OrderQuery = listQuerySchema(PURCHASE_ORDER_SORT_FIELDS, {
  status: Type.Optional(Status),
  supplier: Type.Optional(Type.String({ maxLength: 200, description: 'Part of the supplier\'s name, any case' })),
  warehouse_id: Type.Optional(Uuid()),
  ...TimeRangeQuery,
});

/** Purchase orders received into stock (seed 000; docs/design.md, "Inventory"). */
export const purchaseOrderRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['inventory'];
  const read = { scope: 'inventory.read' };
  const write = { scope: 'inventory.write' };
  const orders = (request: FastifyRequest, db: Queryable) => createPurchaseOrderRepository(db, actorOf(request.principal));
  const noBodyIsEmpty = async (request: FastifyRequest) => {
    request.body ??= {};
  };

  app.get('/purchase-orders', {
    schema: { tags, summary: 'List purchase orders, newest first', querystring: OrderQuery, response: { 200: listOf(PurchaseOrder) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => orders(request, db).list(filters, { limit, offset, cursor, sort }));
  });

  app.post('/purchase-orders', {
    schema: { tags, summary: 'Draft a purchase order', body: NewOrder, response: { 201: dataOf(PurchaseOrder) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(201, async (db) => ({ data: await orders(request, db).create(request.body) })));

  app.get('/purchase-orders/:id', {
    schema: { tags, summary: 'Get a purchase order', params: IdParams, response: { 200: dataOf(PurchaseOrder) } },
    config: read,
  }, async (request) => {
    const order = await request.tenantDb((db) => orders(request, db).find(request.params.id));
    if (!order) throw notFound('purchase order');
    return { data: order };
  });

  app.patch('/purchase-orders/:id', {
    schema: { tags, summary: 'Edit a draft purchase order', params: IdParams, body: OrderChanges, response: { 200: dataOf(PurchaseOrder) } },
    config: write,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const order = await orders(request, db).update(request.params.id, request.body, request.ifMatch);
    if (!order) throw notFound('purchase order');
    return { data: order };
  }));

  for (const action of ['order', 'cancel'] as const) {
    app.post(`/purchase-orders/:id/${action}`, {
      schema: {
        tags,
        summary: action === 'order' ? 'Place a draft order with the supplier' : 'Cancel an order (what has not arrived is no longer expected)',
        params: IdParams,
        response: { 200: dataOf(PurchaseOrder) },
      },
      config: { ...write, idempotent: true },
    }, async (request, reply) => reply.commit(200, async (db) => {
      const order = await orders(request, db)[action](request.params.id, request.ifMatch);
      if (!order) throw notFound('purchase order');
      return { data: order };
    }));
  }

  app.post('/purchase-orders/:id/receive', {
    schema: {
      tags,
      summary: 'Receive an order into stock, whole or in part: a receive movement per line at the order\'s price',
      params: IdParams,
      body: Receipt,
      response: { 200: Type.Object({ data: PurchaseOrder, movements: Type.Array(Movement) }) },
    },
    config: { ...write, idempotent: true },
    preValidation: noBodyIsEmpty,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const received = await orders(request, db).receive(request.params.id, request.body.lines, request.ifMatch);
    if (!received) throw notFound('purchase order');
    return { data: received.order, movements: received.movements };
  }));
};
