import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { notFound } from '../../shared/contracts/errors.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createWarehouseRepository, WAREHOUSE_SORT_FIELDS } from '../repositories/warehouses.js';
import { dataOf, IdParams, NoContent, Nullable, Timestamp, Uuid, Version } from '../schemas.js';

const Location = Type.Union([
  Type.String({ minLength: 1, maxLength: 500, description: 'Where it is, in words ("Depot North, aisle 3", "Van 12")' }),
  Type.Object({
    lat: Type.Number({ minimum: -90, maximum: 90 }),
    lon: Type.Number({ minimum: -180, maximum: 180 }),
  }, { additionalProperties: false, description: 'Coordinates (WGS 84)' }),
]);

const Warehouse = Type.Object({
  id: Uuid(),
  name: Type.String(),
  location: Nullable(Location),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const NewWarehouse = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  location: Type.Optional(Nullable(Location)),
}, { additionalProperties: false });
const WarehouseChanges = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  location: Type.Optional(Nullable(Location)),
}, { additionalProperties: false, minProperties: 1 });

const WarehouseQuery = listQuerySchema(WAREHOUSE_SORT_FIELDS, {
  name: Type.Optional(Type.String({ maxLength: 200, description: 'Part of the name, any case' })),
});

/** Warehouses: where parts are stocked (DESIGN section 6). */
export const warehouseRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['inventory'];
  const read = { scope: 'inventory.read' };
  const write = { scope: 'inventory.write' };

  app.get('/warehouses', {
    schema: { tags, summary: 'List warehouses', querystring: WarehouseQuery, response: { 200: listOf(Warehouse) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createWarehouseRepository(db).list(filters, { limit, offset, cursor, sort }));
  });

  app.post('/warehouses', {
    schema: { tags, summary: 'Create a warehouse (a depot, a van)', body: NewWarehouse, response: { 201: dataOf(Warehouse) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(201, async (db) => ({ data: await createWarehouseRepository(db).create(request.body) })));

  app.get('/warehouses/:id', {
    schema: { tags, summary: 'Get a warehouse', params: IdParams, response: { 200: dataOf(Warehouse) } },
    config: read,
  }, async (request) => {
    const warehouse = await request.tenantDb((db) => createWarehouseRepository(db).find(request.params.id));
    if (!warehouse) throw notFound('warehouse');
    return { data: warehouse };
  });

  app.patch('/warehouses/:id', {
    schema: { tags, summary: 'Rename or relocate a warehouse', params: IdParams, body: WarehouseChanges, response: { 200: dataOf(Warehouse) } },
    config: write,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const warehouse = await createWarehouseRepository(db).update(request.params.id, request.body, request.ifMatch);
    if (!warehouse) throw notFound('warehouse');
    return { data: warehouse };
  }));

  app.delete('/warehouses/:id', {
    schema: { tags, summary: 'Delete a warehouse that never held stock (409 otherwise)', params: IdParams, response: { 204: NoContent } },
    config: write,
  }, async (request, reply) => reply.commit(204, async (db) => {
    if (!(await createWarehouseRepository(db).delete(request.params.id, request.ifMatch))) throw notFound('warehouse');
  }));
};
