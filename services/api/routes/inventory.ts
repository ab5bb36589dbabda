import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { notFound } from '../../shared/contracts/errors.js';
import { actorOf } from '../history.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createInventoryRepository, INVENTORY_SORT_FIELDS, MOVEMENT_KINDS } from '../repositories/inventory.js';
import { dataOf, IdParams, NoContent, Nullable, StringEnum, TimeRangeQuery, Timestamp, Uuid, Version } from '../schemas.js';

const MAX_MOVE_QUANTITY = 1_000_000_000;
const Money = (description: string) => Type.Integer({ description: `${description}, in integer minor units` });

const Item = Type.Object({
  id: Uuid(),
  sku: Type.String(),
  name: Type.String(),
  description: Nullable(Type.String()),
  unit: Nullable(Type.String({ description: 'The unit quantities count (pcs, m, ml)' })),
  fits_models: Type.Array(Type.String(), { description: 'Asset models the part fits (matched case-insensitively against an asset\'s model)' }),
  quantity_on_hand: Type.Integer({ description: 'Across all warehouses' }),
  average_cost: Money('Weighted-average cost per unit (the stock\'s value ÷ quantity, rounded half-up)'),
  stock_value: Money('What the units on hand cost'),
  stock: Type.Array(Type.Object({ warehouse_id: Uuid(), quantity: Type.Integer() }), { description: 'Per warehouse that has held the item' }),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const Models = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 200 });
const NewItem = Type.Object({
  sku: Type.String({ minLength: 1, maxLength: 100 }),
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.Optional(Nullable(Type.String({ maxLength: 5000 }))),
  unit: Type.Optional(Nullable(Type.String({ maxLength: 20 }))),
  fits_models: Type.Optional(Models),
}, { additionalProperties: false });
const ItemChanges = Type.Object({
  sku: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  description: Type.Optional(Nullable(Type.String({ maxLength: 5000 }))),
  unit: Type.Optional(Nullable(Type.String({ maxLength: 20 }))),
  fits_models: Type.Optional(Models),
}, { additionalProperties: false, minProperties: 1 });

const Kind = StringEnum(MOVEMENT_KINDS);
const NewMovement = Type.Object({
  kind: Kind,
  warehouse_id: Uuid({ description: 'Where units arrive (receive, positive adjust) or leave from (consume, transfer, negative adjust)' }),
  to_warehouse_id: Type.Optional(Uuid({ description: 'A transfer\'s destination' })),
  quantity: Type.Integer({
    minimum: -MAX_MOVE_QUANTITY, maximum: MAX_MOVE_QUANTITY,
    description: 'Units moved; positive, except an adjustment, which is a signed correction',
  }),
  unit_cost: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000_000, description: 'Minor units per unit: required to receive; an adjustment adding units defaults to the average' })),
  work_order_id: Type.Optional(Uuid({ description: 'The job the parts were used on' })),
  note: Type.Optional(Type.String({ maxLength: 2000 })),
}, { additionalProperties: false });

export const Movement = Type.Object({
  id: Type.String(),
  item_id: Uuid(),
  kind: Kind,
  warehouse_id: Uuid(),
  to_warehouse_id: Nullable(Uuid()),
  quantity: Type.Integer(),
  unit_cost: Nullable(Money('The cost per unit booked')),
  value: Money('The value that entered (+) or left (−) stock'),
  work_order_id: Nullable(Uuid()),
  purchase_order_id: Nullable(Uuid({ description: 'The purchase order a receipt delivered' })),
  note: Nullable(Type.String()),
  quantity_after: Type.Integer({ description: 'The item\'s quantity on hand after the movement' }),
  stock_value_after: Money('The item\'s stock value after the movement'),
  average_cost_after: Money('The item\'s average cost after the movement'),
  created_by: Nullable(Uuid()),
  api_key_id: Nullable(Uuid()),
  created_at: Timestamp(),
});

const InventoryQuery = listQuerySchema(INVENTORY_SORT_FIELDS, {
  sku: Type.Optional(Type.String({ maxLength: 100 })),
  name: Type.Optional(Type.String({ maxLength: 200, description: 'Part of the name, any case' })),
  fits_model: Type.Optional(Type.String({ maxLength: 100, description: 'Parts that fit this asset model' })),
  fits_asset_id: Type.Optional(Uuid({ description: 'Parts that fit this asset (by its model)' })),
  warehouse_id: Type.Optional(Uuid({ description: 'Items in stock at this warehouse' })),
});

const MovementQuery = listQuerySchema(['id', 'created_at'], {
  kind: Type.Optional(Kind),
  warehouse_id: Type.Optional(Uuid({ description: 'Movements from or to this warehouse' })),
  work_order_id: Type.Optional(Uuid()),
  purchase_order_id: Type.Optional(Uuid()),
  ...TimeRangeQuery,
});

/** The parts catalogue, its stock and the movement log (DESIGN section 6; docs/design.md, "Inventory"). */
export const inventoryRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['inventory'];
  const read = { scope: 'inventory.read' };
  const write = { scope: 'inventory.write' };

  app.get('/inventory', {
    schema: { tags, summary: 'List parts with their stock', querystring: InventoryQuery, response: { 200: listOf(Item) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createInventoryRepository(db, actorOf(request.principal)).list(filters, { limit, offset, cursor, sort }));
  });

  app.post('/inventory', {
    schema: { tags, summary: 'Add a part to the catalogue (no stock yet: receive it)', body: NewItem, response: { 201: dataOf(Item) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(201, async (db) => ({ data: await createInventoryRepository(db, actorOf(request.principal)).create(request.body) })));

  app.get('/inventory/:id', {
    schema: { tags, summary: 'Get a part with its stock per warehouse', params: IdParams, response: { 200: dataOf(Item) } },
    config: read,
  }, async (request) => {
    const item = await request.tenantDb((db) => createInventoryRepository(db, actorOf(request.principal)).find(request.params.id));
    if (!item) throw notFound('inventory item');
    return { data: item };
  });

  app.patch('/inventory/:id', {
    schema: { tags, summary: 'Change a part\'s catalogue entry (stock moves only through movements)', params: IdParams, body: ItemChanges, response: { 200: dataOf(Item) } },
    config: write,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const item = await createInventoryRepository(db, actorOf(request.principal)).update(request.params.id, request.body, request.ifMatch);
    if (!item) throw notFound('inventory item');
    return { data: item };
  }));

  app.delete('/inventory/:id', {
    schema: { tags, summary: 'Remove a part that never moved (409 once it has movements)', params: IdParams, response: { 204: NoContent } },
    config: write,
  }, async (request, reply) => reply.commit(204, async (db) => {
    if (!(await createInventoryRepository(db, actorOf(request.principal)).delete(request.params.id, request.ifMatch))) throw notFound('inventory item');
  }));

  app.post('/inventory/:id/movements', {
    schema: {
      tags,
      summary: 'Move stock: receive (with unit cost), consume (against a work order), transfer, adjust',
      description: 'A movement that would take a warehouse below zero is 409 `conflict` and writes nothing, however many run at once.',
      params: IdParams,
      body: NewMovement,
      response: { 201: dataOf(Movement) },
    },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(201, async (db) => {
    const movement = await createInventoryRepository(db, actorOf(request.principal)).move(request.params.id, request.body);
    if (!movement) throw notFound('inventory item');
    return { data: movement };
  }));

  app.get('/inventory/:id/movements', {
    schema: { tags, summary: 'The item\'s movement log (append-only), oldest first', params: IdParams, querystring: MovementQuery, response: { 200: listOf(Movement) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb(async (db) => {
      const inventory = createInventoryRepository(db, actorOf(request.principal));
      if (!(await inventory.find(request.params.id))) throw notFound('inventory item');
      return inventory.movements(request.params.id, filters, { limit, offset, cursor, sort });
    });
  });

  app.get('/assets/:id/parts', {
    schema: {
      tags,
      summary: 'Parts that fit an asset (by its model), with their stock',
      params: IdParams,
      querystring: listQuerySchema(INVENTORY_SORT_FIELDS, { warehouse_id: Type.Optional(Uuid()) }),
      response: { 200: listOf(Item) },
    },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, warehouse_id: warehouseId } = request.query;
    return request.tenantDb(async (db) => {
      const inventory = createInventoryRepository(db, actorOf(request.principal));
      if (!(await inventory.assetExists(request.params.id))) throw notFound('asset');
      return inventory.list({ fits_asset_id: request.params.id, warehouse_id: warehouseId }, { limit, offset, cursor, sort });
    });
  });
};
