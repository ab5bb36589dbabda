import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { notFound } from '../../shared/contracts/errors.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { CLIENT_SORT_FIELDS, createClientRepository } from '../repositories/clients.js';
import { dataOf, IdParams, NoContent, Nullable, Timestamp, Uuid, Version } from '../schemas.js';

const ClientItem = Type.Object({
  id: Uuid(),
  name: Type.String(),
  email: Nullable(Type.String()),
  phone: Nullable(Type.String()),
  address: Nullable(Type.String()),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const Optional = {
  email: Type.Optional(Nullable(Type.String({ format: 'email', maxLength: 320 }))),
  phone: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 50 }))),
  address: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 1000, description: 'Postal address, free text' }))),
};
const Name = Type.String({ minLength: 1, maxLength: 200 });

const NewClient = Type.Object({ name: Name, ...Optional }, { additionalProperties: false });
const ClientChanges = Type.Object({ name: Type.Optional(Name), ...Optional }, { additionalProperties: false, minProperties: 1 });

const ClientQuery = listQuerySchema(CLIENT_SORT_FIELDS, {
  name: Type.Optional(Type.String({ maxLength: 200, description: 'Part of the name, any case' })),
  email: Type.Optional(Type.String({ maxLength: 320 })),
});

/** `/v1/clients`: the customers that sites, assets and work orders belong to. */
export const clientRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['clients'];
  const read = { scope: 'clients.read' };
  const write = { scope: 'clients.write' };

  app.post('/clients', {
    schema: { tags, summary: 'Create a client', body: NewClient, response: { 201: dataOf(ClientItem) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(201, async (db) => {
    const { name, email = null, phone = null, address = null } = request.body;
    return { data: await createClientRepository(db).create({ name, email, phone, address }) };
  }));

  app.get('/clients', {
    schema: { tags, summary: 'List clients', querystring: ClientQuery, response: { 200: listOf(ClientItem) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createClientRepository(db).list(filters, { limit, offset, cursor, sort }));
  });

  app.get('/clients/:id', {
    schema: { tags, summary: 'Get a client', params: IdParams, response: { 200: dataOf(ClientItem) } },
    config: read,
  }, async (request) => {
    const client = await request.tenantDb((db) => createClientRepository(db).find(request.params.id));
    if (!client) throw notFound('client');
    return { data: client };
  });

  app.patch('/clients/:id', {
    schema: { tags, summary: 'Change a client', params: IdParams, body: ClientChanges, response: { 200: dataOf(ClientItem) } },
    config: write,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const client = await createClientRepository(db).update(request.params.id, request.body, request.ifMatch);
    if (!client) throw notFound('client');
    return { data: client };
  }));

  app.delete('/clients/:id', {
    schema: {
      tags, summary: 'Delete a client', description: 'Refused (409) while sites, assets or work orders still name it.',
      params: IdParams, response: { 204: NoContent },
    },
    config: write,
  }, async (request, reply) => reply.commit(204, async (db) => {
    if (!(await createClientRepository(db).delete(request.params.id, request.ifMatch))) throw notFound('client');
  }));
};
