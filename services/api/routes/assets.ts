import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { actorOf } from '../history.js';
import { notFound } from '../../shared/contracts/errors.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { ASSET_STATES } from '../../shared/contracts/domain.js';
import { ASSET_SORT_FIELDS, createAssetRepository } from '../repositories/assets.js';
import { dataOf, IdParams, Nullable, NullableTimestamp, StringEnum, Timestamp, Uuid, Version, VersionEntryOf } from '../schemas.js';

const State = StringEnum(ASSET_STATES, { description: 'Mechanical state' });
const Metadata = Type.Record(Type.String(), Type.Unknown(), { description: 'Free-form attributes of your own' });

const AssetFields = {
  id: Uuid(),
  name: Type.String(),
  make: Nullable(Type.String()),
  model: Nullable(Type.String()),
  serial: Nullable(Type.String()),
  client_id: Nullable(Uuid()),
  device_id: Nullable(Uuid({ description: 'The tracker mounted on the asset: its fixes carry the asset from the moment it is linked' })),
  state: State,
  metadata: Metadata,
  status: StringEnum(['active', 'archived']),
  archived_at: NullableTimestamp(),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
};

const AssetRecord = Type.Object(AssetFields, { description: 'The asset\'s own fields, as kept in a version' });

const AssetItem = Type.Object({
  ...AssetFields,
  last_seen_at: NullableTimestamp({ description: 'Last contact of its device' }),
  last_position: Nullable(Type.Object({
    ts: NullableTimestamp({ description: 'Device time of the fix' }),
    lat: Type.Number(),
    lon: Type.Number(),
    speed_mps: Nullable(Type.Number()),
    heading_deg: Nullable(Type.Number()),
    accuracy_m: Nullable(Type.Number()),
  }, { description: 'Last position of its device' })),
});

const Text = (maxLength: number) => Type.Optional(Nullable(Type.String({ minLength: 1, maxLength })));
const Writable = {
  make: Text(100),
  model: Text(100),
  serial: Text(100),
  client_id: Type.Optional(Nullable(Uuid())),
  device_id: Type.Optional(Nullable(Uuid({ description: 'A device of yours not tracking another asset; null unlinks' }))),
  state: Type.Optional(State),
  metadata: Type.Optional(Metadata),
};
const Name = Type.String({ minLength: 1, maxLength: 200 });

const NewAsset = Type.Object({ name: Name, ...Writable }, { additionalProperties: false });
const AssetChanges = Type.Object({ name: Type.Optional(Name), ...Writable }, { additionalProperties: false, minProperties: 1 });

const AssetQuery = listQuerySchema(ASSET_SORT_FIELDS, {
  name: Type.Optional(Type.String({ maxLength: 200, description: 'Part of the name, any case' })),
  make: Type.Optional(Type.String({ maxLength: 100, description: 'Any case' })),
  model: Type.Optional(Type.String({ maxLength: 100, description: 'Any case' })),
  serial: Type.Optional(Type.String({ maxLength: 100 })),
  client_id: Type.Optional(Uuid()),
  device_id: Type.Optional(Uuid()),
  state: Type.Optional(State),
  status: Type.Optional(StringEnum(['active', 'archived', 'all'], { description: 'Default active' })),
  zone: Type.Optional(Uuid({ description: 'A geofence: assets whose last position lies inside it' })),
});

const FilterOptions = Type.Object({
  makes: Type.Array(Type.String()),
  models: Type.Array(Type.String()),
  clients: Type.Array(Type.Object({ id: Uuid(), name: Type.String() })),
  states: Type.Array(State),
});

const HistoryQuery = listQuerySchema(['version', 'changed_at'], {});
const VersionParams = Type.Object({ id: Uuid(), version: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) });

/** `/v1/assets`: machines and vehicles, their trackers, their versions. */
export const assetRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['assets'];
  const read = { scope: 'assets.read' };
  const write = { scope: 'assets.write' };

  app.post('/assets', {
    schema: { tags, summary: 'Create an asset', body: NewAsset, response: { 201: dataOf(AssetItem) } },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(201, async (db) => {
    const { name, make = null, model = null, serial = null, client_id = null, device_id = null, state = 'operational', metadata = {} } = request.body;
    const asset = await createAssetRepository(db, actorOf(request.principal))
      .create({ name, make, model, serial, client_id, device_id, state, metadata });
    return { data: asset };
  }));

  app.get('/assets', {
    schema: { tags, summary: 'List assets (active ones unless status says otherwise)', querystring: AssetQuery, response: { 200: listOf(AssetItem) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createAssetRepository(db, actorOf(request.principal)).list(filters, { limit, offset, cursor, sort }));
  });

  app.get('/assets/filter-options', {
    schema: { tags, summary: 'The makes, models, clients and states in use among active assets', response: { 200: dataOf(FilterOptions) } },
    config: read,
  }, async (request) => ({ data: await request.tenantDb((db) => createAssetRepository(db, actorOf(request.principal)).filterOptions()) }));

  app.get('/assets/:id', {
    schema: { tags, summary: 'Get an asset', params: IdParams, response: { 200: dataOf(AssetItem) } },
    config: read,
  }, async (request) => {
    const asset = await request.tenantDb((db) => createAssetRepository(db, actorOf(request.principal)).find(request.params.id));
    if (!asset) throw notFound('asset');
    return { data: asset };
  });

  app.patch('/assets/:id', {
    schema: { tags, summary: 'Change an asset (a new version)', params: IdParams, body: AssetChanges, response: { 200: dataOf(AssetItem) } },
    config: write,
  }, async (request, reply) => reply.commit(200, async (db) => ({
    data: await createAssetRepository(db, actorOf(request.principal)).update(request.params.id, request.body, request.ifMatch),
  })));

  for (const action of ['archive', 'unarchive'] as const) {
    app.post(`/assets/:id/${action}`, {
      schema: {
        tags,
        summary: action === 'archive' ? 'Archive an asset: hidden from lists, kept with its history' : 'Bring an archived asset back',
        params: IdParams,
        response: { 200: dataOf(AssetItem) },
      },
      config: { ...write, idempotent: true },
    }, async (request, reply) => reply.commit(200, async (db) => ({
      data: await createAssetRepository(db, actorOf(request.principal)).setArchived(request.params.id, action === 'archive', request.ifMatch),
    })));
  }

  app.get('/assets/:id/history', {
    schema: {
      tags,
      summary: 'The asset\'s versions, newest first: who changed what, when, and the asset as it was',
      params: IdParams,
      querystring: HistoryQuery,
      response: { 200: listOf(VersionEntryOf(AssetRecord)) },
    },
    config: read,
  }, async (request) => {
    const { id } = request.params;
    return request.tenantDb(async (db) => {
      const assets = createAssetRepository(db, actorOf(request.principal));
      if (!(await assets.find(id))) throw notFound('asset');
      const page = await assets.versions(id, request.query);
      return { ...page, data: page.data.map(({ snapshot, ...entry }) => ({ ...entry, data: snapshot })) };
    });
  });

  app.post('/assets/:id/history/:version/restore', {
    schema: {
      tags,
      summary: 'Make a past version current again (as a new version)',
      description: '409 when the version names a client or device that is gone, or a device now tracking another asset.',
      params: VersionParams,
      response: { 200: dataOf(AssetItem) },
    },
    config: { ...write, idempotent: true },
  }, async (request, reply) => reply.commit(200, async (db) => ({
    data: await createAssetRepository(db, actorOf(request.principal)).restore(request.params.id, request.params.version, request.ifMatch),
  })));
};
