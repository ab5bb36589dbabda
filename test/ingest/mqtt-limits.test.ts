import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createDevice, createOrg, type TestOrg } from '../support/factories.js';
import { encodeGpsBatch } from '../../ingest/proto.js';
import { remainingLength } from '../../bench/lib/mqtt-wire.js';
import { closed, connectDevice, metricValue, refusalsOf, startIngest, type IngestUnderTest } from './support.js';

const CONNECT_TIMEOUT_MS = 1500;

let db: TestDatabase;
let sut: IngestUnderTest;
let org: TestOrg;

beforeAll(async () => {
  db = await createTestDatabase();
  sut = await startIngest({ ...db.config, MQTT_CONNECT_TIMEOUT_MS: CONNECT_TIMEOUT_MS });
  org = await createOrg(db.owner);
});

afterAll(async () => {
  await sut?.close();
  await db?.drop();
});

/** Opens a raw socket to the broker and resolves with how long the server took to close it. */
async function rawSocket(): Promise<{ socket: net.Socket; closedAfterMs: Promise<number> }> {
  const { port } = new URL(sut.mqttUrl);
  const socket = net.connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => {}); // writes after the server's close fail: expected
  const opened = Date.now();
  const closedAfterMs = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - opened)));
  return { socket, closedAfterMs };
}

const fix = (tsMs: number) => ({ ts_ms: tsMs, lat: 52.520008, lon: 13.404954, speed_mps: 4.5, heading_deg: 271.5, accuracy_m: 4.2, altitude_m: 35, battery_pct: 87.5, seq: 12 });

async function positionCount(deviceId: string): Promise<number> {
  const { rows } = await db.owner.query<{ n: string }>('select count(*) as n from positions where device_id = $1', [deviceId]);
  return Number(rows[0]!.n);
}

describe('MQTT limits before login', () => {
  it('ends a connection whose CONNECT claims 200 MB as soon as its length is read, without waiting for the body', async () => {
    const { socket, closedAfterMs } = await rawSocket();
    socket.write(Buffer.concat([Buffer.from([0x10, ...remainingLength(200 * 1024 * 1024)]), Buffer.from([0x00, 0x04, 0x4d, 0x51])]));
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    for (let i = 0; i < 16 && !socket.destroyed; i++) socket.write(chunk); // keeps streaming, as an attacker would
    expect(await closedAfterMs).toBeLessThan(CONNECT_TIMEOUT_MS / 2); // cut by the size check, not the connect timeout
    expect(await metricValue(sut.httpBase, 'fieldops_ingest_rejected_total', { reason: 'packet_too_large' })).toBeGreaterThanOrEqual(1);
  });

  it('refuses a CONNECT over 2 KiB the same way', async () => {
    const { socket, closedAfterMs } = await rawSocket();
    socket.write(Buffer.from([0x10, ...remainingLength(2049)]));
    expect(await closedAfterMs).toBeLessThan(CONNECT_TIMEOUT_MS / 2);
  });

  it('closes a socket that sends no CONNECT within MQTT_CONNECT_TIMEOUT_MS', async () => {
    const { closedAfterMs } = await rawSocket();
    const after = await closedAfterMs;
    expect(after).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 50);
    expect(after).toBeLessThan(CONNECT_TIMEOUT_MS + 2000);
  });
});

describe('MQTT limits after login', () => {
  it('ends the connection of a device whose PUBLISH is over MQTT_MAX_PACKET_BYTES, counted on the device', async () => {
    const device = await createDevice(db.owner, org.id);
    const client = await connectDevice(sut.mqttUrl, device.id, device.token);
    const gone = closed(client);
    client.publish(`fieldops/${device.id}/gps/json`, Buffer.alloc(65 * 1024, 0x20), { qos: 1 });
    await gone;
    expect(await refusalsOf(db.owner, device.id, { packet_too_large: 1 })).toEqual({ packet_too_large: 1 });
    client.end(true);
    const again = await connectDevice(sut.mqttUrl, device.id, device.token); // a connection of its own is not held against it
    await again.endAsync();
  });

  it('takes a valid JSON batch of 300 and of 379 fixes (the batch limit is in fixes, whatever the encoding)', async () => {
    const device = await createDevice(db.owner, org.id);
    const client = await connectDevice(sut.mqttUrl, device.id, device.token);
    const base = Date.now() - 3600_000;
    for (const [n, offset] of [[300, 0], [379, 300]] as const) {
      const payload = JSON.stringify({ fixes: Array.from({ length: n }, (_, i) => fix(base + (offset + i) * 1000)) });
      expect(payload.length).toBeLessThan(64 * 1024);
      await client.publishAsync(`fieldops/${device.id}/gps/json`, payload, { qos: 1 });
    }
    expect(await positionCount(device.id)).toBe(679);
    expect(client.connected).toBe(true);
    await client.endAsync();
  });

  it('refuses fixes more than 10 minutes ahead or older than the retention (and ts_ms = 1), counted on the device', async () => {
    const device = await createDevice(db.owner, org.id);
    const client = await connectDevice(sut.mqttUrl, device.id, device.token);
    const now = Date.now();
    const topic = `fieldops/${device.id}/gps`;
    const send = (...ts: number[]) => client.publishAsync(topic, Buffer.from(encodeGpsBatch({ fixes: ts.map(fix) })), { qos: 1 });
    await send(now - 1000, now + 5 * 60_000, now + 60 * 60_000, 1, now - 91 * 24 * 3600_000);
    await client.publishAsync(`${topic}/json`, JSON.stringify({ ts_ms: now + 24 * 3600_000 - 1, lat: 1, lon: 2 }), { qos: 1 });
    const { rows } = await db.owner.query<{ ms: string }>(
      'select (extract(epoch from ts) * 1000)::int8 as ms from positions where device_id = $1 order by ts', [device.id]);
    expect(rows.map((r) => Number(r.ms))).toEqual([now - 1000, now + 5 * 60_000]);
    expect(await refusalsOf(db.owner, device.id, { ts_in_future: 2, ts_too_old: 2 })).toEqual({ ts_in_future: 2, ts_too_old: 2 });
    expect(client.connected).toBe(true);
    await client.endAsync();
  });
});
