import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createDevice, createOrg, type TestDevice, type TestOrg } from '../support/factories.js';
import { encodeGpsBatch } from '../../ingest/proto.js';
import { metricValue, refusalsOf, startIngest, type IngestUnderTest } from './support.js';
import { waitFor } from '../support/wait.js';

let db: TestDatabase;
let sut: IngestUnderTest;
let org: TestOrg;
let tsBase = Date.now() - 3600_000;
const nextTs = () => (tsBase += 1000);

const fix = (tsMs: number, lat = 59.33, lon = 18.06) => ({ ts_ms: tsMs, lat, lon, speed_mps: 2, heading_deg: 180, accuracy_m: 3, battery_pct: 50, seq: 1 });
const batch = (...fixes: ReturnType<typeof fix>[]) => Buffer.from(encodeGpsBatch({ fixes }));

async function countAt(deviceId: string, tsMs: number): Promise<number> {
  const { rows } = await db.owner.query('select 1 from positions where device_id = $1 and ts = to_timestamp($2::float8 / 1000)', [deviceId, tsMs]);
  return rows.length;
}

interface Ack {
  type: 'ack';
  seq: number;
  accepted: number;
  rejected: { index: number; reason: string }[];
  error?: string;
}

/** A device socket that hands out its acks in order. */
class DeviceSocket {
  private readonly acks: Ack[] = [];
  private waiters: ((ack: Ack) => void)[] = [];
  closeCode: number | null = null;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const ack = JSON.parse(String(data)) as Ack;
      const waiter = this.waiters.shift();
      if (waiter) waiter(ack);
      else this.acks.push(ack);
    });
    ws.on('close', (code) => { this.closeCode = code; });
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<DeviceSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      const socket = new DeviceSocket(ws);
      ws.once('open', () => resolve(socket));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  nextAck(): Promise<Ack> {
    const ack = this.acks.shift();
    return ack ? Promise.resolve(ack) : new Promise((resolve) => this.waiters.push(resolve));
  }

  send(data: Buffer | string): void {
    this.ws.send(data, { binary: typeof data !== 'string' });
  }

  close(): void {
    this.ws.close();
  }
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

describe('WebSocket ingest', () => {
  let device: TestDevice;

  beforeAll(async () => {
    device = await createDevice(db.owner, org.id);
  });

  it('refuses the upgrade without a valid token (401)', async () => {
    await expect(DeviceSocket.open(sut.wsUrl)).rejects.toMatchObject({ status: 401 });
    await expect(DeviceSocket.open(`${sut.wsUrl}?token=nope`)).rejects.toMatchObject({ status: 401 });
  });

  it('acks each binary GpsBatch frame after its fixes are committed (token in the Authorization header)', async () => {
    const socket = await DeviceSocket.open(sut.wsUrl, { authorization: `Bearer ${device.token}` });
    const [a, b, c] = [nextTs(), nextTs(), nextTs()];
    socket.send(batch(fix(a), fix(b)));
    socket.send(batch(fix(c)));
    const first = await socket.nextAck();
    expect(first).toEqual({ type: 'ack', seq: 1, accepted: 2, rejected: [] });
    expect(await countAt(device.id, a) + await countAt(device.id, b)).toBe(2);
    expect(await socket.nextAck()).toEqual({ type: 'ack', seq: 2, accepted: 1, rejected: [] });
    expect(await countAt(device.id, c)).toBe(1);
    socket.close();
  });

  it('answers bad frames in order without closing, keeps the good ones, stores duplicates once (token in ?token=)', async () => {
    const socket = await DeviceSocket.open(`${sut.wsUrl}?token=${encodeURIComponent(device.token)}`);
    const good = nextTs();
    const kept = nextTs();
    socket.send(Buffer.from([0x0a, 0xff, 0xff])); // truncated protobuf
    socket.send(batch(fix(kept), fix(nextTs(), 120), fix(nextTs(), 10, NaN), fix(Date.now() + 2 * 86_400_000)));
    socket.send(Buffer.from(encodeGpsBatch({ fixes: Array.from({ length: 501 }, (_, i) => fix(tsBase + 50_000_000 + i)) })));
    socket.send(JSON.stringify({ fixes: [fix(good)] }));
    socket.send(JSON.stringify({ fixes: [fix(good)] }));
    const acks = [await socket.nextAck(), await socket.nextAck(), await socket.nextAck(), await socket.nextAck(), await socket.nextAck()];
    expect(acks).toEqual([
      { type: 'ack', seq: 1, accepted: 0, rejected: [], error: 'undecodable' },
      { type: 'ack', seq: 2, accepted: 1, rejected: [{ index: 1, reason: 'invalid_lat' }, { index: 2, reason: 'invalid_lon' }, { index: 3, reason: 'ts_in_future' }] },
      { type: 'ack', seq: 3, accepted: 0, rejected: [], error: 'batch_too_large' },
      { type: 'ack', seq: 4, accepted: 1, rejected: [] },
      { type: 'ack', seq: 5, accepted: 1, rejected: [] },
    ]);
    expect(socket.closeCode).toBeNull();
    expect(await countAt(device.id, kept)).toBe(1);
    expect(await countAt(device.id, good)).toBe(1);
    expect(await refusalsOf(db.owner, device.id, { undecodable: 1, invalid_lat: 1, invalid_lon: 1, ts_in_future: 1, batch_too_large: 1 }))
      .toEqual({ undecodable: 1, invalid_lat: 1, invalid_lon: 1, ts_in_future: 1, batch_too_large: 1 });
    socket.close();
  });

  it('closes the socket of a device that gets disabled (4001)', async () => {
    const victim = await createDevice(db.owner, org.id);
    const socket = await DeviceSocket.open(sut.wsUrl, { authorization: `Bearer ${victim.token}` });
    await asTenant(db.owner, org.id, (tx) => tx.query('update devices set disabled_at = now() where id = $1', [victim.id]));
    await waitFor(async () => socket.closeCode !== null, 'the socket to close');
    expect(socket.closeCode).toBe(4001);
    await expect(DeviceSocket.open(sut.wsUrl, { authorization: `Bearer ${victim.token}` })).rejects.toMatchObject({ status: 401 });
  });
});

describe('HTTP ingest', () => {
  let device: TestDevice;

  beforeAll(async () => {
    device = await createDevice(db.owner, org.id);
  });

  const post = (body: Buffer | string, contentType: string, token: string | null = device.token, query = '') =>
    fetch(`${sut.httpBase}/v1/ingest/gps${query}`, {
      method: 'POST',
      headers: { 'content-type': contentType, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: typeof body === 'string' ? body : new Uint8Array(body),
    });

  it('answers 200 after the commit, for protobuf and for JSON (token in ?token=)', async () => {
    const [a, b] = [nextTs(), nextTs()];
    const res = await post(batch(fix(a)), 'application/x-protobuf');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { accepted: 1, rejected: [] } });
    expect(await countAt(device.id, a)).toBe(1);
    const res2 = await post(JSON.stringify({ fixes: [fix(b), fix(b)] }), 'application/json', null, `?token=${encodeURIComponent(device.token)}`);
    expect(res2.status).toBe(200);
    expect(await countAt(device.id, b)).toBe(1);
    const res3 = await post(batch(fix(a)), 'application/octet-stream');
    expect(res3.status).toBe(200); // a duplicate is acknowledged, stored once
    expect(await countAt(device.id, a)).toBe(1);
  });

  it('takes a JSON batch of 500 fixes at full precision (the limit is in fixes, whatever the encoding)', async () => {
    const base = Date.now() - 30 * 60_000;
    const fixes = Array.from({ length: 500 }, (_, i) => ({
      ts_ms: base + i * 1000, lat: 52.520008123456, lon: 13.404954123456, speed_mps: 4.51234, heading_deg: 90.12345,
      accuracy_m: 5.12345, altitude_m: 34.12345, battery_pct: 88.12345, seq: 4_000_000_000 + i,
    }));
    const body = JSON.stringify({ fixes }, null, 1);
    expect(body.length).toBeGreaterThan(500 * 200 + 4096); // past the body limit before
    const res = await post(body, 'application/json');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { accepted: 500, rejected: [] } });
  });

  it('answers 401 in the error shape for a bad token', async () => {
    const res = await post(batch(fix(nextTs())), 'application/x-protobuf', 'not-a-token');
    expect(res.status).toBe(401);
    const body = await res.json() as { error: { code: string; request_id: string; issues: unknown[] } };
    expect(body.error).toMatchObject({ code: 'unauthorized', issues: [] });
    expect(body.error.request_id).toEqual(expect.any(String));
  });

  it('answers 400 in the error shape for bad input, and 200 with the dropped fixes for a partly bad batch', async () => {
    const malformed = await post(Buffer.from([0x0a, 0x05, 0x01]), 'application/x-protobuf');
    expect(malformed.status).toBe(400);
    expect((await malformed.json() as { error: unknown }).error).toMatchObject({ code: 'bad_request', issues: [{ path: 'body' }] });

    const allBad = await post(JSON.stringify({ fixes: [fix(nextTs(), -91), fix(Date.now() + 3 * 86_400_000)] }), 'application/json');
    expect(allBad.status).toBe(400);
    expect((await allBad.json() as { error: unknown }).error).toMatchObject({
      code: 'bad_request', issues: [{ path: 'fixes[0]' }, { path: 'fixes[1]' }],
    });

    const tooLarge = await post(batch(...Array.from({ length: 501 }, (_, i) => fix(tsBase + 90_000_000 + i))), 'application/x-protobuf');
    expect(tooLarge.status).toBe(400);

    const ok = nextTs();
    const partly = await post(batch(fix(ok), fix(nextTs(), 0, 181)), 'application/x-protobuf');
    expect(partly.status).toBe(200);
    expect(await partly.json()).toEqual({ data: { accepted: 1, rejected: [{ index: 1, reason: 'invalid_lon' }] } });
    expect(await countAt(device.id, ok)).toBe(1);
    const refusals = { undecodable: 1, invalid_lat: 1, ts_in_future: 1, batch_too_large: 1, invalid_lon: 1 };
    expect(await refusalsOf(db.owner, device.id, refusals)).toEqual(refusals);
    expect(await metricValue(sut.httpBase, 'fieldops_ingest_rejected_total', { reason: 'invalid_lon' })).toBeGreaterThanOrEqual(1);
  });

  it('serves /metrics on the realtime port', async () => {
    const res = await fetch(`${sut.httpBase}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('fieldops_ingest_messages_total');
  });
});
