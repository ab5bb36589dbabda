import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createDevice, createOrg, type TestOrg } from '../support/factories.js';
import { encodeGpsBatch } from '../../ingest/proto.js';
import { connectDevice, connectError, metricValue, startIngest } from './support.js';
import { waitFor } from '../support/wait.js';

let db: TestDatabase;
let org: TestOrg;

const batchOf = (count: number, firstTs: number) =>
  Buffer.from(encodeGpsBatch({ fixes: Array.from({ length: count }, (_, i) => ({ ts_ms: firstTs + i, lat: 51.5, lon: -0.12 })) }));

beforeAll(async () => {
  db = await createTestDatabase();
  org = await createOrg(db.owner);
});

afterAll(async () => {
  await db?.drop();
});

describe('ingest backpressure', () => {
  it('stops reading from sockets while too many rows wait for the database, then stores everything', async () => {
    const sut = await startIngest({ ...db.config, INGEST_MAX_PENDING_ROWS: 100 });
    const device = await createDevice(db.owner, org.id);
    const client = await connectDevice(sut.mqttUrl, device.id, device.token);
    const locker = await db.owner.connect();
    try {
      await locker.query('begin');
      await locker.query('lock table positions in access exclusive mode'); // commits wait: rows pile up
      const base = Date.now() - 600_000;
      const acks = Array.from({ length: 15 }, (_, k) =>
        client.publishAsync(`fieldops/${device.id}/gps`, batchOf(20, base + k * 100), { qos: 1 }));
      await waitFor(async () => (await metricValue(sut.httpBase, 'fieldops_ingest_backpressure_total', { transport: 'mqtt' })) >= 1, 'backpressure');
      await locker.query('commit');
      await Promise.all(acks);
      const { rows } = await db.owner.query<{ n: string }>('select count(*) as n from positions where device_id = $1', [device.id]);
      expect(Number(rows[0]!.n)).toBe(15 * 20);
      expect(client.connected).toBe(true);
    } finally {
      await locker.query('rollback').catch(() => {});
      locker.release();
      await client.endAsync();
      await sut.close();
    }
  });
});

describe('ingest shutdown', () => {
  it('commits and acknowledges what it took before closing, then refuses connections', async () => {
    const sut = await startIngest(db.config);
    const device = await createDevice(db.owner, org.id);
    const client = await connectDevice(sut.mqttUrl, device.id, device.token);
    const base = Date.now() - 900_000;
    const acked: number[] = [];
    const sends = Array.from({ length: 200 }, (_, k) =>
      client.publishAsync(`fieldops/${device.id}/gps`, batchOf(1, base + k * 1000), { qos: 1 }).then(() => { acked.push(base + k * 1000); }, () => {}));
    await waitFor(async () => acked.length > 0, 'a first PUBACK');
    await sut.close();
    await Promise.all(sends);
    const { rows } = await db.owner.query<{ ms: string }>(
      'select (extract(epoch from ts) * 1000)::int8 as ms from positions where device_id = $1', [device.id]);
    const stored = new Set(rows.map((r) => Number(r.ms)));
    expect(acked.every((ts) => stored.has(ts))).toBe(true);
    await expect(connectError(sut.mqttUrl, { username: device.id, password: device.token, connectTimeout: 2000 })).resolves.toBeInstanceOf(Error);
    client.end(true);
  });
});
