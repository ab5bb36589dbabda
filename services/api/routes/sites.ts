import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { notFound } from '../../shared/contracts/errors.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createSiteRepository, SITE_SORT_FIELDS } from '../repositories/sites.js';
import { dataOf, IdParams, NoContent, Nullable, Timestamp, Uuid, Version } from '../schemas.js';

const Location = Type.Object({
  lat: Type.Number({ minimum: -90, maximum: 90 }),
  lon: Type.Number({ minimum: -180, maximum: 180 }),
}, { additionalProperties: false, description: 'WGS84' });

const SiteItem = Type.Object({
  id: Uuid(),
  name: Type.String(),
  client_id: Nullable(Uuid()),
  address: Nullable(Type.String()),
  location: Nullable(Location),
  geofence_id: Nullable(Uuid({ description: 'The `site` geofence that punches at this site are verified against' })),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const Optional = {
  client_id: Type.Optional(Nullable(Uuid({ description: 'The client the site belongs to' }))),
  address: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 1000 }))),
  location: Type.Optional(Nullable(Location)),
  geofence_id: Type.Optional(Nullable(Uuid({ description: 'A geofence of kind `site`, owned by no other site' }))),
};
const Name = Type.String({ minLength: 1, maxLength: 200 });

const NewSite = Type.Object({ name: Name, ...Optional }, { additionalProperties: false });
const SiteChanges = Type.Object({ name: Type.Optional(Name), ...Optional }, { additionalProperties: false, minProperties: 1 });

const SiteQuery = listQuerySchema(SITE_SORT_FIELDS, {
  name: Type.Optional(Type.String({ maxLength: 200, description: 'Part of the name, any case' })),
  client_id: Type.Optional(Uuid()),
  geofence_id: Type.Optional(Uuid()),
});

/** `/v1/sites`: where the work is; a device's `site_id` may name one. */
export const siteRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['sites'];
  const read = { scope: 'sites.read' };
  const write = { scope: 'sites.write' };

  app.post('/sites', {
    schema: { tags, summary: 'Create a site', body: NewSite, response: { 201: dataOf(SiteItem) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(201, async (db) => {
    const { name, client_id = null, address = null, location = null, geofence_id = null } = request.body;
    return { data: await createSiteRepository(db).create({ name, client_id, address, location, geofence_id }) };
  }));

  app.get('/sites', {
    schema: { tags, summary: 'List sites', querystring: SiteQuery, response: { 200: listOf(SiteItem) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createSiteRepository(db).list(filters, { limit, offset, cursor, sort }));
  });

  app.get('/sites/:id', {
    schema: { tags, summary: 'Get a site', params: IdParams, response: { 200: dataOf(SiteItem) } },
    config: read,
  }, async (request) => {
    const site = await request.tenantDb((db) => createSiteRepository(db).find(request.params.id));
    if (!site) throw notFound('site');
    return { data: site };
  });

  app.patch('/sites/:id', {
    schema: { tags, summary: 'Change a site', params: IdParams, body: SiteChanges, response: { 200: dataOf(SiteItem) } },
    config: write,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const site = await createSiteRepository(db).update(request.params.id, request.body, request.ifMatch);
    if (!site) throw notFound('site');
    return { data: site };
  }));

  app.delete('/sites/:id', {
    schema: {
      tags, summary: 'Delete a site', description: 'Devices at the site keep no site; refused (409) while work orders name it.',
      params: IdParams, response: { 204: NoContent },
    },
    config: write,
  }, async (request, reply) => reply.commit(204, async (db) => {
    if (!(await createSiteRepository(db).delete(request.params.id, request.ifMatch))) throw notFound('site');
  }));
};
