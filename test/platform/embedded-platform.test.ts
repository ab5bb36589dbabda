import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../services/shared/config.js';
import type { Platform } from '../../services/start.js';
import { startRoles } from '../support/platform.js';
import { EMBEDDED_START_TIMEOUT_MS, embeddedDataDir } from '../support/embedded.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { liveUrl } from '../realtime/fixtures.js';
import { LiveClient } from '../realtime/live-client.js';
import { startReceiver, verifySignature } from '../webhooks/receiver.js';

/**
 * The embedded defaults, as `npm start` runs them with neither DATABASE_URL nor REDIS_URL: PGlite
 * behind its socket, the in-process bus, every role in one process. The main flow end to end — an
 * MQTT fix is stored, evaluated into a geofence event, pushed to a dispatcher's socket, delivered to a
 * webhook and served by REST — and a restart that keeps the data.
 */
let dataDir: string;
let config: Config;
let platform: Platform;
let owner: pg.Pool | null = null;
let org: TestOrg;
const closers: (() => unknown)[] = [];

const LON = 4.8440;
const LAT = 45.7470;

async function start(): Promise<{ api: string }> {
  platform = await startRoles(config);
  const endpoints = Object.assign({}, ...platform.roles.map((r) => r.endpoints)) as Record<string, string>;
  return { api: endpoints.api! };
}

async function call<T>(api: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: (await response.json()) as T };
}

/** How long a step of the embedded platform may take on a loaded machine (PGlite is one session for every role). */
const EMBEDDED_WAIT_MS = 45_000;

/** Fails with what was awaited, rather than letting the test time out silently. */
async function within<T>(what: string, work: Promise<T>, ms = EMBEDDED_WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

async function signIn(api: string): Promise<string> {
  const response = await fetch(`${api}/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: org.adminEmail, password: org.adminPassword, organization_id: org.id }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: { token: string } }).data.token;
}

beforeAll(async () => {
  dataDir = await embeddedDataDir();
  config = loadConfig({
    DATA_DIR: dataDir, HOST: '127.0.0.1', API_PORT: '0', REALTIME_PORT: '0', MQTT_PORT: '0',
    JWT_SECRET: randomBytes(32).toString('hex'), LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', FIELDOPS_DEMO: '0',
    WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
  });
  expect(config.DATABASE_URL).toBeUndefined();
  expect(config.REDIS_URL).toBeUndefined();
}, EMBEDDED_START_TIMEOUT_MS);

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await owner?.end();
  await platform?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the embedded defaults', () => {
  let deviceId: string;
  let breachId: string;

  it('run every role on the embedded database and the in-process bus', async () => {
    await start();
    expect(platform.runtime.database.kind).toBe('embedded');
    expect(platform.runtime.backplane.kind).toBe('in-process');
    expect(platform.roles.map((r) => r.name).sort()).toEqual(['api', 'geofence', 'ingest', 'realtime', 'webhooks']);
    // FIELDOPS_DEMO=0: an empty database stays empty.
    expect(platform.demo).toBeNull();
    const { rows } = await platform.runtime.pool('worker').query<{ n: string }>('select count(*) as n from organizations');
    expect(Number(rows[0]!.n)).toBe(0);
  }, 120_000);

  // Retried once: under a full parallel `npm test` the breach has (rarely) not reached the live socket, the
  // positions around it having arrived; not reproduced alone — an open bug, see docs/design.md "Known issues".
  it('take an MQTT fix through storage, the geofence evaluator and the live socket to REST', { retry: 1, timeout: 120_000 }, async () => {
    const endpoints = Object.assign({}, ...platform.roles.map((r) => r.endpoints)) as Record<string, string>;
    owner ??= platform.runtime.database.ownerPool(1);
    org = await createOrg(owner, 'unlimited');
    const token = await signIn(endpoints.api!);

    const d = 0.001;
    const fence = await call<{ data: { id: string } }>(endpoints.api!, token, 'POST', '/v1/geofences', {
      name: 'Rail yard', kind: 'restricted', confirm_fixes: 2,
      geometry: { type: 'Polygon', coordinates: [[[LON - d, LAT - d], [LON + d, LAT - d], [LON + d, LAT + d], [LON - d, LAT + d], [LON - d, LAT - d]]] },
    });
    expect(fence.status).toBe(201);
    const receiver = await startReceiver();
    closers.push(() => receiver.close());
    const webhook = await call<{ data: { secret: string } }>(endpoints.api!, token, 'POST', '/v1/webhooks', {
      url: receiver.url('/breaches'), events: ['asset.geofence_breach'],
    });
    expect(webhook.status).toBe(201);
    const device = await call<{ data: { id: string; token: string } }>(endpoints.api!, token, 'POST', '/v1/devices', { name: 'Van 9', kind: 'tracker' });
    expect(device.status).toBe(201);
    deviceId = device.body.data.id;

    const dispatcher = await LiveClient.connect(liveUrl(platform.realtimePort!, token));
    closers.push(() => dispatcher.close());
    await dispatcher.request({ type: 'subscribe', channels: ['positions', 'events'] });

    const gps: MqttClient = await mqtt.connectAsync(endpoints.mqtt!, {
      clientId: deviceId, username: deviceId, password: device.body.data.token, protocolVersion: 4, reconnectPeriod: 0,
    });
    closers.push(() => gps.endAsync(true));
    const t0 = Date.now() - 10_000;
    const track = [[LON + 0.01, LAT], [LON, LAT], [LON + 0.0002, LAT], [LON + 0.0004, LAT]];
    for (const [i, [lon, lat]] of track.entries()) {
      // QoS 1: the PUBACK comes once the fix is committed.
      await within(`PUBACK of fix ${i}`, gps.publishAsync(`fieldops/${deviceId}/gps/json`, JSON.stringify({ ts_ms: t0 + i * 1000, lat, lon, speed_mps: 8, accuracy_m: 3 }), { qos: 1 }));
    }

    const position = await within('last position on the live socket', dispatcher.next((m) => m.type === 'position' && m.ts === new Date(t0 + 3000).toISOString(), 'the last position', EMBEDDED_WAIT_MS));
    expect(position).toMatchObject({ device_id: deviceId, asset_id: null, lat: LAT, lon: LON + 0.0004, speed_mps: 8 });
    const breach = await within('breach event on the live socket', dispatcher.next((m) => m.type === 'event' && m.event === 'asset.geofence_breach', 'the breach', EMBEDDED_WAIT_MS));
    expect(breach).toMatchObject({
      tenant_id: org.id,
      occurred_at: new Date(t0 + 2000).toISOString(),
      data: { device_id: deviceId, geofence_id: fence.body.data.id, geofence_name: 'Rail yard' },
    });
    breachId = breach.id as string;
    // The webhooks role, on the same embedded database, delivers the event signed.
    await within('the breach at the webhook receiver', (async () => {
      while (receiver.at('/breaches').length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    })());
    const hook = receiver.at('/breaches')[0]!;
    expect(JSON.parse(hook.body)).toMatchObject({ event: 'asset.geofence_breach', tenant_id: org.id, data: { device_id: deviceId, geofence_id: fence.body.data.id } });
    expect(verifySignature(hook.headers['x-fieldops-signature'], hook.body, webhook.body.data.secret)).toBe(true);

    const stored = await call<{ data: { ts: string; lat: number; lon: number }[] }>(endpoints.api!, token, 'GET',
      `/v1/gps-events?device_id=${deviceId}&from=${new Date(t0 - 1000).toISOString()}&sort=ts`);
    expect(stored.status).toBe(200);
    expect(stored.body.data.map((f) => [f.lon, f.lat])).toEqual(track);
    const events = await call<{ data: { id: string; event: string }[] }>(endpoints.api!, token, 'GET', `/v1/events?device_id=${deviceId}&type=asset.geofence_breach`);
    expect(events.body.data).toEqual([expect.objectContaining({ event: 'asset.geofence_breach', data: breach.data })]);

    // A fence change reaches the running evaluator through the change notice (LISTEN/NOTIFY, relayed
    // between the connections of the one embedded session): the exit carries the new name.
    expect((await call(endpoints.api!, token, 'PATCH', `/v1/geofences/${fence.body.data.id}`, { name: 'Rail yard (closed)' })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const [i, lon] of [LON + 0.01, LON + 0.011].entries()) {
      await within(`PUBACK of exit fix ${i}`, gps.publishAsync(`fieldops/${deviceId}/gps/json`, JSON.stringify({ ts_ms: t0 + 5000 + i * 1000, lat: LAT, lon, accuracy_m: 3 }), { qos: 1 }));
    }
    const exit = await within('exit event on the live socket', dispatcher.next((m) => m.type === 'event' && m.event === 'asset.geofence_exited', 'the exit', EMBEDDED_WAIT_MS));
    expect(exit).toMatchObject({ data: { device_id: deviceId, geofence_name: 'Rail yard (closed)' } });
  });

  it('keep the data across a restart', async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await owner!.end();
    owner = null;
    await platform.close();

    const { api } = await start();
    const token = await signIn(api);
    const device = await call<{ data: { id: string; last_position: { lon: number } | null } }>(api, token, 'GET', `/v1/devices/${deviceId}`);
    expect(device.status).toBe(200);
    expect(device.body.data.last_position).toMatchObject({ lon: LON + 0.011, lat: LAT });
    const events = await call<{ data: { event: string }[] }>(api, token, 'GET', `/v1/events?device_id=${deviceId}`);
    expect(events.body.data.map((e) => e.event)).toContain('asset.geofence_breach');
    // The in-process streams began empty with this process: a dispatcher resuming from before the
    // restart gets the breach again, under the same id, from the stored events.
    const later = await LiveClient.connect(liveUrl(platform.realtimePort!, token));
    closers.push(() => later.close());
    later.send({ type: 'subscribe', channels: ['events'], since: '1-0' });
    expect(await later.next((m) => m.type === 'event' && m.event === 'asset.geofence_breach', 'the replayed breach', EMBEDDED_WAIT_MS))
      .toMatchObject({ id: breachId, data: { device_id: deviceId } });
  }, 120_000);
});
