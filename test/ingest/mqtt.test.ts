import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createAsset, createDevice, createOrg, type TestDevice, type TestOrg } from '../support/factories.js';
import { encodeGpsBatch, encodePunch } from '../../ingest/proto.js';
import { decodePositions, decodePunches, shardKey } from '../../services/shared/contracts/stream-codec.js';
import { strictly } from '../support/streams.js';
import { closed, connectDevice, connectError, metricValue, refusalsOf, startIngest, type IngestUnderTest } from './support.js';
import { waitFor } from '../support/wait.js';

let db: TestDatabase;
let sut: IngestUnderTest;
let org: TestOrg;
let tsBase = Date.now() - 3600_000;
const nextTs = () => (tsBase += 1000);

const fix = (tsMs: number, lat = 52.52, lon = 13.405) => ({ ts_ms: tsMs, lat, lon, speed_mps: 4.5, heading_deg: 90, accuracy_m: 5, altitude_m: 34, battery_pct: 88, seq: 7 });

async function positionCount(deviceId: string, tsMs?: number): Promise<number> {
  const { rows } = await db.owner.query<{ n: string }>(
    `select count(*) as n from positions where device_id = $1 ${tsMs === undefined ? '' : "and ts = to_timestamp($2::float8 / 1000)"}`,
    tsMs === undefined ? [deviceId] : [deviceId, tsMs]);
  return Number(rows[0]!.n);
}

beforeAll(async () => {
  db = await createTestDatabase();
  sut = await startIngest(db.config);
  org = await createOrg(db.owner);
});

afterAll(async () => {
  await sut?.close();
  await db?.drop();
});

describe('MQTT ingest', () => {
  let device: TestDevice;
  let client: MqttClient;

  beforeAll(async () => {
    const assetId = await createAsset(db.owner, org.id);
    device = await createDevice(db.owner, org.id, { assetId });
    client = await connectDevice(sut.mqttUrl, device.id, device.token);
  });

  afterAll(async () => {
    await client?.endAsync();
  });

  it('stores a QoS 1 fix before its PUBACK arrives (MQTT 3.1.1)', async () => {
    const ts = nextTs();
    await client.publishAsync(`fieldops/${device.id}/gps`, Buffer.from(encodeGpsBatch({ fixes: [fix(ts)] })), { qos: 1 });
    const { rows } = await db.owner.query(
      'select tenant_id, asset_id, lat, lon, speed_mps, seq from positions where device_id = $1 and ts = to_timestamp($2::float8 / 1000)', [device.id, ts]);
    expect(rows).toEqual([{ tenant_id: org.id, asset_id: device.assetId, lat: 52.52, lon: 13.405, speed_mps: 4.5, seq: '7' }]);
  });

  it('takes JSON on the /json topic, a batch of fixes in one message', async () => {
    const [a, b] = [nextTs(), nextTs()];
    await client.publishAsync(`fieldops/${device.id}/gps/json`, JSON.stringify({ fixes: [fix(a), { ts_ms: String(b), lat: -33.9, lon: 151.2 }] }), { qos: 1 });
    expect(await positionCount(device.id, a)).toBe(1);
    const { rows } = await db.owner.query('select lat, lon, speed_mps from positions where device_id = $1 and ts = to_timestamp($2::float8 / 1000)', [device.id, b]);
    expect(rows).toEqual([{ lat: -33.9, lon: 151.2, speed_mps: null }]);
  });

  it('stores a duplicate fix once and still acknowledges it', async () => {
    const ts = nextTs();
    const payload = Buffer.from(encodeGpsBatch({ fixes: [fix(ts), fix(ts)] }));
    await client.publishAsync(`fieldops/${device.id}/gps`, payload, { qos: 1 });
    await client.publishAsync(`fieldops/${device.id}/gps`, payload, { qos: 1 });
    await Promise.all([1, 2, 3].map(() => client.publishAsync(`fieldops/${device.id}/gps`, payload, { qos: 1 })));
    expect(await positionCount(device.id, ts)).toBe(1);
  });

  it('writes QoS 0 fixes the same way', async () => {
    const ts = nextTs();
    await client.publishAsync(`fieldops/${device.id}/gps`, Buffer.from(encodeGpsBatch({ fixes: [fix(ts)] })), { qos: 0 });
    await waitFor(async () => (await positionCount(device.id, ts)) === 1, 'the QoS 0 fix');
  });

  it('refuses bad input without disconnecting and keeps the valid messages around it, counted in /metrics', async () => {
    const topic = `fieldops/${device.id}/gps`;
    const good = [nextTs(), nextTs(), nextTs()];
    const far = Date.now() + 3 * 24 * 3600_000;
    const mixedOk = nextTs();
    const results = await Promise.allSettled([
      client.publishAsync(topic, Buffer.from(encodeGpsBatch({ fixes: [fix(good[0]!)] })), { qos: 1 }),
      client.publishAsync(topic, Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01]), { qos: 1 }), // malformed protobuf
      client.publishAsync(topic, Buffer.from(encodeGpsBatch({ fixes: [fix(nextTs(), NaN)] })), { qos: 1 }),
      client.publishAsync(topic, Buffer.from(encodeGpsBatch({ fixes: [fix(nextTs(), 91)] })), { qos: 1 }),
      client.publishAsync(topic, Buffer.from(encodeGpsBatch({ fixes: [fix(nextTs(), 10, -180.5)] })), { qos: 1 }),
      client.publishAsync(topic, Buffer.from(encodeGpsBatch({ fixes: [fix(far)] })), { qos: 1 }),
      client.publishAsync(topic, Buffer.from(encodeGpsBatch({ fixes: Array.from({ length: 501 }, (_, i) => fix(tsBase + 10_000_000 + i)) })), { qos: 1 }),
      client.publishAsync(`${topic}/json`, '{"fixes": [', { qos: 1 }),
      client.publishAsync(topic, Buffer.from(encodeGpsBatch({ fixes: [fix(mixedOk), fix(nextTs(), 95)] })), { qos: 1 }),
      client.publishAsync(topic, Buffer.from(encodeGpsBatch({ fixes: [fix(good[1]!)] })), { qos: 0 }),
      client.publishAsync(topic, Buffer.from(encodeGpsBatch({ fixes: [fix(good[2]!)] })), { qos: 1 }),
    ]);
    expect(results.map((r) => r.status)).toEqual(results.map(() => 'fulfilled')); // every QoS 1 message was acknowledged
    expect(client.connected).toBe(true);
    for (const ts of [...good, mixedOk]) await waitFor(async () => (await positionCount(device.id, ts)) === 1, `fix ${ts}`);
    expect(await positionCount(device.id, far)).toBe(0);
    expect(await positionCount(device.id, tsBase + 10_000_000)).toBe(0);
    // Per device in device_rejections (shown by the devices API); /metrics counts by reason only.
    expect(await refusalsOf(db.owner, device.id, { undecodable: 2, invalid_lat: 3, invalid_lon: 1, ts_in_future: 1, batch_too_large: 1 }))
      .toEqual({ undecodable: 2, invalid_lat: 3, invalid_lon: 1, ts_in_future: 1, batch_too_large: 1 });
    expect(await metricValue(sut.httpBase, 'fieldops_ingest_rejected_total', { reason: 'invalid_lat' })).toBeGreaterThanOrEqual(3);
    const metrics = await (await fetch(`${sut.httpBase}/metrics`)).text();
    expect(metrics).not.toContain(device.id);
    expect(metrics).not.toContain('device_id=');
  });

  it('appends committed fixes to the position stream of their shard as PositionRecords', async () => {
    const ts = nextTs();
    await client.publishAsync(`fieldops/${device.id}/gps`, Buffer.from(encodeGpsBatch({ fixes: [fix(ts, 48.1, 11.5)] })), { qos: 1 });
    const runtime = sut.platform.runtime;
    const stream = runtime.streams.positionShard(runtime.streams.shardOf(shardKey(device.assetId, device.id)));
    const record = await waitFor(async () => {
      const entries = await runtime.bus().range(stream, '-', '+', 10_000);
      return decodePositions(entries, strictly).find((r) => r.ts_ms === ts);
    }, 'the stream entry');
    const { rows: [row] } = await db.owner.query<{ id: string }>('select id from positions where device_id = $1 and ts = to_timestamp($2::float8 / 1000)', [device.id, ts]);
    expect(record).toEqual({
      id: row!.id, tenant_id: org.id, device_id: device.id, asset_id: device.assetId, ts_ms: ts, lat: 48.1, lon: 11.5,
      speed_mps: 4.5, heading_deg: 90, accuracy_m: 5, altitude_m: 34, battery_pct: 88, seq: 7,
    });
  });

  it('keeps the device\'s last position and last contact in device_state', async () => {
    const ts = nextTs();
    await client.publishAsync(`fieldops/${device.id}/gps`, Buffer.from(encodeGpsBatch({ fixes: [fix(ts, 40.4, -3.7)] })), { qos: 1 });
    const state = await waitFor(async () => {
      const { rows } = await db.owner.query('select lat, lon, last_fix_ts, last_seen_at from device_state where device_id = $1', [device.id]);
      return rows[0]?.lat === 40.4 ? rows[0] : null;
    }, 'device_state');
    expect(state.lon).toBe(-3.7);
    expect((state.last_fix_ts as Date).getTime()).toBe(ts);
  });
});

describe('MQTT punches', () => {
  it('stores a punch with the device\'s site, from protobuf and JSON, and streams it', async () => {
    const siteId = await asTenant(db.owner, org.id, async (tx) => {
      const { rows } = await tx.query<{ id: string }>(
        `insert into geofences (tenant_id, name, kind, geometry) values ($1, 'Depot', 'site', '{"type":"Point","coordinates":[13.4,52.5]}') returning id`, [org.id]);
      return rows[0]!.id;
    });
    const clock = await createDevice(db.owner, org.id, { kind: 'attendance', siteId });
    const client = await connectDevice(sut.mqttUrl, clock.id, clock.token);
    const [a, b] = [nextTs(), nextTs()];
    await client.publishAsync(`fieldops/${clock.id}/punch`, Buffer.from(encodePunch({ ts_ms: a, employee_id: 'BADGE-7', kind: 1, lat: 52.5, lon: 13.4 })), { qos: 1 });
    await client.publishAsync(`fieldops/${clock.id}/punch/json`, JSON.stringify({ ts_ms: b, employee_id: 'BADGE-7', kind: 'out' }), { qos: 1 });
    await client.publishAsync(`fieldops/${clock.id}/punch/json`, JSON.stringify({ ts_ms: nextTs(), kind: 'in' }), { qos: 1 }); // no employee
    await client.publishAsync(`fieldops/${clock.id}/punch`, Buffer.from(encodePunch({ ts_ms: nextTs(), employee_id: 'BADGE-7' })), { qos: 1 }); // no kind
    const { rows } = await db.owner.query(
      'select tenant_id, site_id, employee_ref, kind, lat, lon from punches where device_id = $1 order by ts', [clock.id]);
    expect(rows).toEqual([
      { tenant_id: org.id, site_id: siteId, employee_ref: 'BADGE-7', kind: 'in', lat: 52.5, lon: 13.4 },
      { tenant_id: org.id, site_id: siteId, employee_ref: 'BADGE-7', kind: 'out', lat: null, lon: null },
    ]);
    expect(client.connected).toBe(true);
    const runtime = sut.platform.runtime;
    const records = await waitFor(async () => {
      const entries = await runtime.bus().range(runtime.streams.punches, '-', '+', 1000);
      const found = decodePunches(entries, strictly).filter((r) => r.device_id === clock.id);
      return found.length === 2 ? found : null;
    }, 'punch stream entries');
    expect(records.map((r) => [r.kind, r.site_id, r.employee_ref, r.ts_ms])).toEqual([['in', siteId, 'BADGE-7', a], ['out', siteId, 'BADGE-7', b]]);
    await client.endAsync();
  });
});

describe('MQTT authentication and authorization', () => {
  let device: TestDevice;
  let other: TestDevice;

  beforeAll(async () => {
    device = await createDevice(db.owner, org.id);
    other = await createDevice(db.owner, org.id);
  });

  it('refuses a wrong password, an unknown token and a token presented with another device id (CONNACK 4)', async () => {
    expect((await connectError(sut.mqttUrl, { username: device.id, password: 'wrong' })).code).toBe(4);
    expect((await connectError(sut.mqttUrl, { username: device.id })).code).toBe(4);
    expect((await connectError(sut.mqttUrl, { username: other.id, password: device.token })).code).toBe(4);
  });

  it('refuses a client id other than the device id (CONNACK 2); no device can end another\'s session', async () => {
    const [mine, theirs] = [await createDevice(db.owner, org.id), await createDevice(db.owner, org.id)];
    const own = await connectDevice(sut.mqttUrl, theirs.id, theirs.token);
    const stillOpen = { value: true };
    own.once('close', () => { stillOpen.value = false; });
    for (const clientId of [theirs.id, 'some-tracker', '']) {
      expect((await connectError(sut.mqttUrl, { username: mine.id, password: mine.token, clientId, protocolVersion: 4 })).code).toBe(2);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(stillOpen.value).toBe(true);
    expect(own.connected).toBe(true);
    const ts = nextTs();
    await own.publishAsync(`fieldops/${theirs.id}/gps`, Buffer.from(encodeGpsBatch({ fixes: [fix(ts)] })), { qos: 1 });
    expect(await positionCount(theirs.id, ts)).toBe(1);
    await own.endAsync();
  });

  it('closes the connection of a device publishing to another device\'s topic, storing nothing', async () => {
    const client = await connectDevice(sut.mqttUrl, device.id, device.token);
    const gone = closed(client);
    const ts = nextTs();
    void client.publishAsync(`fieldops/${other.id}/gps`, Buffer.from(encodeGpsBatch({ fixes: [fix(ts)] })), { qos: 1 }).catch(() => {});
    await gone;
    expect(await positionCount(other.id)).toBe(0);
    expect(await positionCount(device.id)).toBe(0);
    expect(await refusalsOf(db.owner, device.id, { unauthorized_topic: 1 })).toEqual({ unauthorized_topic: 1 });
    client.end(true);
  });

  it('lets a device subscribe to its own command topics only', async () => {
    const client = await connectDevice(sut.mqttUrl, device.id, device.token);
    const granted = await client.subscribeAsync([`fieldops/${device.id}/cmd/#`, `fieldops/${device.id}/cmd/reboot`]);
    expect(granted.map((g) => g.qos)).toEqual([0, 0]);
    // SUBACK 0x80 for a filter outside the device's own command topics (mqtt.js reports it as an error).
    for (const filter of [`fieldops/${other.id}/cmd/#`, '#', `fieldops/${device.id}/gps`]) {
      await expect(client.subscribeAsync(filter)).rejects.toMatchObject({ packet: { granted: [128] } });
    }
    expect(client.connected).toBe(true);
    await client.endAsync();
  });

  it('answers an MQTT 5 CONNECT with "unacceptable protocol version": aedes 1.x speaks 3.1 and 3.1.1 only', async () => {
    const err = await connectError(sut.mqttUrl, { protocolVersion: 5, username: device.id, password: device.token });
    expect(err.message).toMatch(/unacceptable protocol version/i);
  });

  it('cuts off a live session within seconds when its device is disabled', async () => {
    const victim = await createDevice(db.owner, org.id);
    const client = await connectDevice(sut.mqttUrl, victim.id, victim.token);
    const gone = closed(client);
    await asTenant(db.owner, org.id, (tx) => tx.query('update devices set disabled_at = now() where id = $1', [victim.id]));
    await gone;
    expect((await connectError(sut.mqttUrl, { username: victim.id, password: victim.token })).code).toBe(5);
  });

  it('cuts off a live session when its token is rotated; the new token works', async () => {
    const victim = await createDevice(db.owner, org.id);
    const client = await connectDevice(sut.mqttUrl, victim.id, victim.token);
    const gone = closed(client);
    const { sha256 } = await import('../../services/shared/secrets.js');
    await asTenant(db.owner, org.id, (tx) => tx.query('update devices set token_hash = $2, token_rotated_at = now() where id = $1', [victim.id, sha256('new-token')]));
    await gone;
    expect((await connectError(sut.mqttUrl, { username: victim.id, password: victim.token })).code).toBe(4);
    const again = await connectDevice(sut.mqttUrl, victim.id, 'new-token');
    await again.endAsync();
  });
});

describe('MQTT under load', () => {
  it('stores every fix of 200 devices publishing at once', async () => {
    const devices = await Promise.all(Array.from({ length: 200 }, () => createDevice(db.owner, org.id)));
    const clients = await Promise.all(devices.map((d) => connectDevice(sut.mqttUrl, d.id, d.token)));
    const perDevice = 10;
    const base = Date.now() - 600_000;
    await Promise.all(clients.map((c, i) => Promise.all(Array.from({ length: perDevice }, (_, k) =>
      c.publishAsync(`fieldops/${devices[i]!.id}/gps`, Buffer.from(encodeGpsBatch({ fixes: [fix(base + k * 1000)] })), { qos: 1 })))));
    const { rows } = await db.owner.query<{ n: string }>('select count(*) as n from positions where device_id = any($1::uuid[])', [devices.map((d) => d.id)]);
    expect(Number(rows[0]!.n)).toBe(200 * perDevice);
    await Promise.all(clients.map((c) => c.endAsync()));
  });
});
