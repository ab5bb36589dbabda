import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DEVICE_KINDS } from '../../shared/contracts/domain.js';
import { notFound } from '../../shared/contracts/errors.js';
import { listOf, listQuerySchema } from '../pagination.js';
import { createDeviceRepository, DEVICE_SORT_FIELDS } from '../repositories/devices.js';
import { dataOf, IdParams, NoContent, Nullable, NullableTimestamp, StringEnum, Timestamp, Uuid, Version } from '../schemas.js';

const Kind = StringEnum(DEVICE_KINDS);

const LastPosition = Type.Object({
  ts: NullableTimestamp({ description: 'Device time of the fix' }),
  lat: Type.Number(),
  lon: Type.Number(),
  speed_mps: Nullable(Type.Number()),
  heading_deg: Nullable(Type.Number()),
  accuracy_m: Nullable(Type.Number()),
  battery_pct: Nullable(Type.Number()),
});

const Device = Type.Object({
  id: Uuid(),
  name: Type.String(),
  kind: Kind,
  asset_id: Nullable(Uuid()),
  site_id: Nullable(Uuid()),
  status: StringEnum(['active', 'disabled']),
  disabled_at: NullableTimestamp(),
  token_rotated_at: NullableTimestamp(),
  last_seen_at: NullableTimestamp({ description: 'Last contact of the device' }),
  last_position: Nullable(LastPosition),
  rejected: Type.Record(Type.String(), Type.Integer(), {
    description: 'Messages or fixes refused from this device, by reason (e.g. `ts_in_future`, `invalid_lat`, `batch_too_large`)',
  }),
  version: Version,
  created_at: Timestamp(),
  updated_at: Timestamp(),
});

const DeviceWithToken = Type.Object({
  ...Device.properties,
  token: Type.String({ description: 'The device\'s secret (MQTT password, ingest bearer): shown only in this answer' }),
});

const Links = {
  asset_id: Type.Optional(Nullable(Uuid({ description: 'The asset the device is mounted on' }))),
  site_id: Type.Optional(Nullable(Uuid({
    description: 'The site an attendance device stands at: a site, or a geofence of kind `site`; its punches are verified against the site\'s geofence first',
  }))),
};

const NewDevice = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }), kind: Kind, ...Links }, { additionalProperties: false });
const DeviceChanges = Type.Object(
  { name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), ...Links },
  { additionalProperties: false, minProperties: 1 },
);

const DeviceQuery = listQuerySchema(DEVICE_SORT_FIELDS, {
  kind: Type.Optional(Kind),
  asset_id: Type.Optional(Uuid()),
  site_id: Type.Optional(Uuid()),
  status: Type.Optional(StringEnum(['active', 'disabled'])),
});

export const deviceRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['devices'];
  const read = { scope: 'devices.read' };
  const write = { scope: 'devices.write' };

  app.post('/devices', {
    schema: { tags, summary: 'Register a device (its token is shown once)', body: NewDevice, response: { 201: dataOf(DeviceWithToken) } },
    config: { ...write, idempotent: 'sealed' },
  }, async (request, reply) => reply.commit(201, async (db) => {
    const { device, token } = await createDeviceRepository(db).create(request.body);
    return { data: { ...device, token } };
  }));

  app.get('/devices', {
    schema: { tags, summary: 'List devices with their last contact and position', querystring: DeviceQuery, response: { 200: listOf(Device) } },
    config: read,
  }, async (request) => {
    const { limit, offset, cursor, sort, ...filters } = request.query;
    return request.tenantDb((db) => createDeviceRepository(db).list(filters, { limit, offset, cursor, sort }));
  });

  app.get('/devices/:id', {
    schema: { tags, summary: 'Get a device', params: IdParams, response: { 200: dataOf(Device) } },
    config: read,
  }, async (request) => {
    const device = await request.tenantDb((db) => createDeviceRepository(db).find(request.params.id));
    if (!device) throw notFound('device');
    return { data: device };
  });

  app.patch('/devices/:id', {
    schema: { tags, summary: 'Rename a device or change its asset or site', params: IdParams, body: DeviceChanges, response: { 200: dataOf(Device) } },
    config: write,
  }, async (request, reply) => reply.commit(200, async (db) => {
    const device = await createDeviceRepository(db).update(request.params.id, request.body, request.ifMatch);
    if (!device) throw notFound('device');
    return { data: device };
  }));

  app.post('/devices/:id/rotate-token', {
    schema: { tags, summary: 'Replace the device token (the old one stops working)', params: IdParams, response: { 200: dataOf(DeviceWithToken) } },
    config: { ...write, idempotent: 'sealed' },
  }, async (request, reply) => reply.commit(200, async (db) => {
    const rotated = await createDeviceRepository(db).rotateToken(request.params.id, request.ifMatch);
    if (!rotated) throw notFound('device');
    return { data: { ...rotated.device, token: rotated.token } };
  }));

  for (const action of ['disable', 'enable'] as const) {
    app.post(`/devices/:id/${action}`, {
      schema: {
        tags,
        summary: action === 'disable' ? 'Disable a device: it can no longer connect or send' : 'Enable a disabled device',
        params: IdParams,
        response: { 200: dataOf(Device) },
      },
      config: { ...write, idempotent: true },
    }, async (request, reply) => reply.commit(200, async (db) => {
      const device = await createDeviceRepository(db).setDisabled(request.params.id, action === 'disable', request.ifMatch);
      if (!device) throw notFound('device');
      return { data: device };
    }));
  }

  app.delete('/devices/:id', {
    schema: { tags, summary: 'Delete a device (its stored positions stay)', params: IdParams, response: { 204: NoContent } },
    config: write,
  }, async (request, reply) => reply.commit(204, async (db) => {
    if (!(await createDeviceRepository(db).delete(request.params.id, request.ifMatch))) throw notFound('device');
  }));
};
