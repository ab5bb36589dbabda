import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Platform } from '../../services/start.js';
import { startRoles } from '../support/platform.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createAsset, createDevice, createOrg, type TestDevice, type TestOrg } from '../support/factories.js';
import { LiveClient } from './live-client.js';
import { liveUrl } from './fixtures.js';

/** The whole platform in one process, as `fieldops start` runs it: MQTT fix → ingest → streams → live socket. */
let db: TestDatabase;
let platform: Platform;
let apiBase: string;
let mqttUrl: string;
const closers: (() => unknown)[] = [];

async function signIn(org: TestOrg): Promise<string> {
  const res = await fetch(`${apiBase}/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: org.adminEmail, password: org.adminPassword, organization_id: org.id }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: { token: string } }).data.token;
}

async function tracker(device: TestDevice): Promise<MqttClient> {
  const client = await mqtt.connectAsync(mqttUrl, { username: device.id, password: device.token, clientId: device.id, protocolVersion: 4, reconnectPeriod: 0 });
  closers.push(() => client.endAsync(true));
  return client;
}

async function dispatcher(org: TestOrg): Promise<LiveClient> {
  const client = await LiveClient.connect(liveUrl(platform.realtimePort!, await signIn(org)));
  closers.push(() => client.close());
  await client.request({ type: 'subscribe', channels: ['positions', 'events'] });
  return client;
}

/** A restricted square around (lon, lat) that one fix inside confirms. */
async function restrictedFence(org: TestOrg, lon: number, lat: number, name: string): Promise<string> {
  const d = 0.001;
  const ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d], [lon - d, lat - d]];
  return asTenant(db.owner, org.id, async (c) => (await c.query<{ id: string }>(
    `insert into geofences (tenant_id, name, kind, geometry, confirm_fixes) values ($1, $2, 'restricted', $3, 1) returning id`,
    [org.id, name, JSON.stringify({ type: 'Polygon', coordinates: [ring] })],
  )).rows[0]!.id);
}

beforeAll(async () => {
  db = await createTestDatabase();
  platform = await startRoles(db.config);
  const endpoints = Object.assign({}, ...platform.roles.map((r) => r.endpoints)) as Record<string, string>;
  apiBase = endpoints.api!.replace('localhost', '127.0.0.1');
  mqttUrl = endpoints.mqtt!.replace('localhost', '127.0.0.1');
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await platform?.close();
  await db?.drop();
});

it('delivers an MQTT fix as a position and a restricted-fence entry as a breach event, to its own tenant only', async () => {
  const org = await createOrg(db.owner, 'team');
  const other = await createOrg(db.owner, 'team');
  const assetId = await createAsset(db.owner, org.id, 'Excavator 7');
  const device = await createDevice(db.owner, org.id, { assetId });
  const otherDevice = await createDevice(db.owner, other.id);
  const fenceId = await restrictedFence(org, 7.4474, 46.9481, 'Blasting zone');

  const mine = await dispatcher(org);
  const theirs = await dispatcher(other);
  const gps = await tracker(device);
  const tsMs = Date.now() - 1000;
  await gps.publishAsync(`fieldops/${device.id}/gps/json`, JSON.stringify({ fixes: [{ ts_ms: tsMs, lat: 46.9481, lon: 7.4474, speed_mps: 4.2, heading_deg: 135, accuracy_m: 3 }] }), { qos: 1 });

  expect(await mine.next((m) => m.type === 'position', 'the position')).toEqual({
    type: 'position',
    asset_id: assetId,
    device_id: device.id,
    ts: new Date(tsMs).toISOString(),
    lat: 46.9481,
    lon: 7.4474,
    speed_mps: expect.closeTo(4.2, 5),
    heading_deg: 135,
  });
  const breach = await mine.next((m) => m.type === 'event' && m.event === 'asset.geofence_breach', 'the breach');
  expect(breach).toMatchObject({
    id: expect.stringMatching(/^\d+-\d+$/),
    tenant_id: org.id,
    occurred_at: new Date(tsMs).toISOString(),
    data: { asset_id: assetId, device_id: device.id, geofence_id: fenceId, geofence_name: 'Blasting zone', lat: 46.9481, lon: 7.4474 },
  });
  expect(mine.ofType('event').map((m) => m.event)).toContain('asset.geofence_entered');

  // The other tenant's own fix reaches it, after ours went by: ours never did.
  const theirGps = await tracker(otherDevice);
  await theirGps.publishAsync(`fieldops/${otherDevice.id}/gps/json`, JSON.stringify({ ts_ms: tsMs, lat: 10, lon: 20 }), { qos: 1 });
  expect(await theirs.next((m) => m.type === 'position')).toMatchObject({ asset_id: null, device_id: otherDevice.id, lat: 10, lon: 20 });
  expect(theirs.received).toHaveLength(1);

  // A dispatcher who reconnects with the breach's id gets what came after it, and nothing before.
  const later = await LiveClient.connect(liveUrl(platform.realtimePort!, await signIn(org)));
  closers.push(() => later.close());
  const all = mine.ofType('event').map((m) => m.id as string);
  later.send({ type: 'subscribe', channels: ['events'], since: all[0] });
  await later.next((m) => m.id === all.at(-1));
  expect(later.ofType('event').map((m) => m.id)).toEqual(all.slice(1));
});
