import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform } from '../../services/start.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { startRoles } from '../support/platform.js';
import { waitFor } from '../support/wait.js';

/**
 * The whole platform in one process, as `fieldops start` runs it, driven only through its real
 * transports: REST for the business objects, MQTT for the devices.
 */
let db: TestDatabase;
let platform: Platform;
let apiBase: string;
let mqttUrl: string;
let org: TestOrg;
let token: string;
const clients: MqttClient[] = [];

async function call<T = { data: Record<string, unknown> }>(method: string, path: string, body?: object): Promise<{ status: number; body: T }> {
  const res = await fetch(`${apiBase}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function connect(deviceId: string, deviceToken: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(mqttUrl, { username: deviceId, password: deviceToken, clientId: deviceId, protocolVersion: 4, reconnectPeriod: 0 });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  db = await createTestDatabase();
  platform = await startRoles(db.config);
  const endpoints = Object.assign({}, ...platform.roles.map((r) => r.endpoints)) as Record<string, string>;
  apiBase = endpoints.api!.replace('localhost', '127.0.0.1');
  mqttUrl = endpoints.mqtt!.replace('localhost', '127.0.0.1');
  org = await createOrg(db.owner, 'team');
  const login = await fetch(`${apiBase}/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: org.adminEmail, password: org.adminPassword, organization_id: org.id }),
  });
  token = ((await login.json()) as { data: { token: string } }).data.token;
});

afterAll(async () => {
  for (const client of clients) await client.endAsync(true).catch(() => {});
  await platform?.close();
  await db?.drop();
});

describe('end to end', () => {
  it('an attendance device punches by badge code over MQTT, and the punch lands on that employee\'s timesheet, verified at the site', async () => {
    const LON = 2.3522;
    const LAT = 48.8566;
    const fence = await call('POST', '/v1/geofences', { name: 'Depot gate', kind: 'site', geometry: { type: 'Point', coordinates: [LON, LAT] }, radius_m: 100 });
    expect(fence.status).toBe(201);
    const site = await call('POST', '/v1/sites', { name: 'Depot', location: { lat: LAT, lon: LON }, geofence_id: fence.body.data.id });
    expect(site.status).toBe(201);
    const employee = await call('POST', '/v1/employees', { name: 'Marie', role: 'Technician', badge_code: 'BADGE-42' });
    expect(employee.status).toBe(201);
    const device = await call('POST', '/v1/devices', { name: 'Gate clock', kind: 'attendance', site_id: site.body.data.id });
    expect(device.status).toBe(201);
    const employeeId = employee.body.data.id as string;

    const clock = await connect(device.body.data.id as string, device.body.data.token as string);
    const inAt = Date.now() - 2 * 3600_000;
    const outAt = inAt + 90 * 60_000;
    for (const [kind, ts] of [['in', inAt], ['out', outAt]] as const) {
      await clock.publishAsync(`fieldops/${device.body.data.id}/punch/json`,
        JSON.stringify({ ts_ms: ts, employee_id: 'BADGE-42', kind, lat: LAT + 0.0001, lon: LON, accuracy_m: 8 }), { qos: 1 });
    }

    type Sheet = { employee_id: string; employee_name: string; hours: number; verified: boolean; punches: { kind: string; gps_verified: boolean | null; site_id: string | null }[] };
    const sheet = await waitFor(async () => {
      const res = await call<{ data: Sheet[] }>('GET', `/v1/timesheets?employee_id=${employeeId}`);
      const found = res.body.data[0];
      return found && found.punches.length === 2 && found.punches.every((p) => p.gps_verified !== null) ? found : null;
    }, { what: 'the verified timesheet', intervalMs: 100 });
    expect(sheet).toMatchObject({ employee_id: employeeId, employee_name: 'Marie', hours: 1.5, verified: true });
    expect(sheet.punches.map((p) => [p.kind, p.gps_verified, p.site_id])).toEqual([
      ['in', true, fence.body.data.id],
      ['out', true, fence.body.data.id],
    ]);
    const events = await call<{ data: { event: string; data: { employee_id: string; employee_ref: string } }[] }>(
      'GET', `/v1/events?employee_id=${employeeId}&sort=occurred_at`);
    expect(events.body.data.map((e) => [e.event, e.data.employee_ref])).toEqual([['employee.punched_in', 'BADGE-42'], ['employee.punched_out', 'BADGE-42']]);
  });

  it('a tracker linked to an asset through the API stamps the asset on its fixes from then on', async () => {
    const device = await call('POST', '/v1/devices', { name: 'Van tracker', kind: 'tracker' });
    const deviceId = device.body.data.id as string;
    const gps = await connect(deviceId, device.body.data.token as string);
    let ts = Date.now() - 60_000;
    const publish = () => gps.publishAsync(`fieldops/${deviceId}/gps/json`, JSON.stringify({ fixes: [{ ts_ms: ++ts, lat: 45.76, lon: 4.84, accuracy_m: 4 }] }), { qos: 1 });
    type Fix = { asset_id: string | null; ts: string };
    const fixes = async () => (await call<{ data: Fix[] }>('GET', `/v1/gps-events?device_id=${deviceId}&sort=ts&limit=100`)).body.data;

    await publish();
    const [unlinked] = await waitFor(async () => ((await fixes()).length ? fixes() : null), { what: 'the first fix', intervalMs: 100 });
    expect(unlinked!.asset_id).toBeNull();

    const asset = await call('POST', '/v1/assets', { name: 'Van 12', make: 'Ford', model: 'Transit', device_id: deviceId });
    expect(asset.status).toBe(201);
    const assetId = asset.body.data.id as string;
    // The link reaches ingest on the device's change notice, within moments of the commit.
    await waitFor(async () => {
      await publish();
      return (await fixes()).some((f) => f.asset_id === assetId);
    }, { what: 'a fix carrying the asset', intervalMs: 100 });
    const stamped = await fixes();
    const firstLinked = stamped.findIndex((f) => f.asset_id === assetId);
    // From then on, every fix carries it.
    expect(stamped.slice(firstLinked).every((f) => f.asset_id === assetId)).toBe(true);
    expect(stamped[0]!.asset_id).toBeNull();

    // The device's last position is written just after the fixes commit, so the asset shows it moments later.
    const read = await waitFor(async () => {
      const res = await call<{ data: { last_position: unknown } }>('GET', `/v1/assets/${assetId}`);
      return res.body.data.last_position ? res : null;
    }, { what: "the asset's last position", intervalMs: 100 });
    expect(read.body.data).toMatchObject({ device_id: deviceId, last_position: { lat: 45.76, lon: 4.84 } });
  });
});
