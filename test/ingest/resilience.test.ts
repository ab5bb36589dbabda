import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createDevice, createOrg, type TestDevice, type TestOrg } from '../support/factories.js';
import { encodeGpsBatch } from '../../ingest/proto.js';
import { decodePositions } from '../../services/shared/contracts/stream-codec.js';
import { strictly } from '../support/streams.js';
import { freePort } from '../support/platform.js';
import { connectDevice, metricValue, ScratchRedis, startIngest, type IngestUnderTest } from './support.js';
import { waitFor } from '../support/wait.js';

let db: TestDatabase;
let redis: ScratchRedis;
let sut: IngestUnderTest;
let org: TestOrg;

const gps = (tsMs: number) => Buffer.from(encodeGpsBatch({ fixes: [{ ts_ms: tsMs, lat: 45 + (tsMs % 1000) / 1e4, lon: 7.6 }] }));

/** Every position id in the position streams (a gap replay may repeat one: at least once). */
async function streamedIds(): Promise<Set<string>> {
  const runtime = sut.platform.runtime;
  const ids = new Set<string>();
  for (const stream of runtime.streams.allPositionShards()) {
    for (const record of decodePositions(await runtime.bus().range(stream, '-', '+', 100_000), strictly)) ids.add(record.id);
  }
  return ids;
}

async function storedIds(deviceIds: string[]): Promise<string[]> {
  const { rows } = await db.owner.query<{ id: string }>('select id from positions where device_id = any($1::uuid[])', [deviceIds]);
  return rows.map((r) => r.id);
}

async function killIngestConnections(): Promise<number> {
  const { rowCount } = await db.owner.query(
    "select pg_terminate_backend(pid) from pg_stat_activity where usename = 'fieldops_ingest' and datname = $1", [db.name]);
  return rowCount ?? 0;
}

beforeAll(async () => {
  redis = new ScratchRedis(await freePort());
  await redis.start();
  db = await createTestDatabase({ REDIS_URL: redis.url });
  sut = await startIngest(db.config);
  org = await createOrg(db.owner);
});

afterAll(async () => {
  await sut?.close();
  await redis?.stop();
  await db?.drop();
});

describe('ingest when the database fails', () => {
  it('stores every acknowledged QoS 1 fix exactly once while its connections are killed mid-stream, and streams them all', async () => {
    const devices = await Promise.all(Array.from({ length: 20 }, () => createDevice(db.owner, org.id)));
    const clients = await Promise.all(devices.map((d) => connectDevice(sut.mqttUrl, d.id, d.token)));
    const acked = new Map<string, number[]>(devices.map((d) => [d.id, []]));
    let publishing = true;
    const base = Date.now() - 3600_000;
    const publishers = clients.map(async (client, i) => {
      const device = devices[i]!;
      for (let k = 0; publishing; k++) {
        const ts = base + k * 100 + i;
        await Promise.all([0, 1, 2].map(async (j) => {
          // The same fix sent twice (a retransmit) must still be one row.
          await client.publishAsync(`fieldops/${device.id}/gps`, gps(ts + j * 1_000_000), { qos: 1 });
          await client.publishAsync(`fieldops/${device.id}/gps`, gps(ts + j * 1_000_000), { qos: 1 });
          acked.get(device.id)!.push(ts + j * 1_000_000);
        }));
      }
    });
    let kills = 0;
    for (let round = 0; round < 6; round++) {
      await new Promise((r) => setTimeout(r, 300));
      kills += await killIngestConnections();
    }
    publishing = false;
    await Promise.all(publishers);
    expect(kills).toBeGreaterThan(0);

    let total = 0;
    for (const device of devices) {
      const sent = [...new Set(acked.get(device.id)!)].sort((a, b) => a - b);
      const { rows } = await db.owner.query<{ ms: string }>(
        'select (extract(epoch from ts) * 1000)::int8 as ms from positions where device_id = $1 order by ts', [device.id]);
      expect(rows.map((r) => Number(r.ms))).toEqual(sent);
      total += sent.length;
    }
    expect(total).toBeGreaterThan(100);
    const ids = await storedIds(devices.map((d) => d.id));
    await waitFor(async () => {
      const streamed = await streamedIds();
      return ids.every((id) => streamed.has(id));
    }, 'every committed fix in the stream');
    await Promise.all(clients.map((c) => c.endAsync()));
  });

  it('withholds the PUBACK while the database refuses connections, then stores the fix once it is back', async () => {
    const device = await createDevice(db.owner, org.id);
    const client = await connectDevice(sut.mqttUrl, device.id, device.token);
    const admin = new pg.Client({ connectionString: db.config.DATABASE_URL.replace(/\/[^/]+$/, '/postgres') });
    await admin.connect();
    try {
      await admin.query(`alter database ${pg.escapeIdentifier(db.name)} allow_connections false`);
      await killIngestConnections();
      const ts = Date.now() - 5000;
      let acknowledged = false;
      const publish = client.publishAsync(`fieldops/${device.id}/gps`, gps(ts), { qos: 1 }).then(() => { acknowledged = true; });
      const retriesBefore = await retries();
      await waitFor(async () => (await retries()) > retriesBefore, 'a failed commit');
      expect(acknowledged).toBe(false);
      await admin.query(`alter database ${pg.escapeIdentifier(db.name)} allow_connections true`);
      await publish;
      const { rows } = await db.owner.query('select 1 from positions where device_id = $1', [device.id]);
      expect(rows).toHaveLength(1);
    } finally {
      await admin.query(`alter database ${pg.escapeIdentifier(db.name)} allow_connections true`);
      await admin.end();
      await client.endAsync();
    }
  });
});

async function retries(): Promise<number> {
  const text = await (await fetch(`${sut.httpBase}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('fieldops_ingest_commit_retries_total '));
  return line ? Number(line.split(' ')[1]) : 0;
}

describe('ingest when Redis fails', () => {
  let device: TestDevice;

  beforeAll(async () => {
    device = await createDevice(db.owner, org.id);
  });

  it('keeps storing while Redis is down and catches the stream up from the database once it is back', async () => {
    const client = await connectDevice(sut.mqttUrl, device.id, device.token);
    const topic = `fieldops/${device.id}/gps`;
    const before = Date.now() - 7200_000;
    await client.publishAsync(topic, gps(before), { qos: 1 });
    const [firstId] = await storedIds([device.id]);
    await waitFor(async () => (await streamedIds()).has(firstId!), 'the first fix in the stream');

    await redis.stop();
    const during = Array.from({ length: 30 }, (_, i) => before + 1000 * (i + 1));
    for (const ts of during) await client.publishAsync(topic, gps(ts), { qos: 1 });
    expect(await storedIds([device.id])).toHaveLength(31);
    await waitFor(async () => {
      // Every batch commits with a provisional gap; the failed append makes it permanent (expires_at null).
      const { rows } = await db.owner.query('select 1 from stream_gaps where expires_at is null');
      return rows.length > 0;
    }, 'a stream gap');
    expect(await metricValue(sut.httpBase, 'fieldops_ingest_stream_gaps_total', { stream: 'positions' })).toBeGreaterThan(0);

    await redis.start(); // empty: the catch-up must bring back every fix committed during the outage
    const ids = await storedIds([device.id]);
    await waitFor(async () => {
      const streamed = await streamedIds();
      return ids.filter((id) => id !== firstId).every((id) => streamed.has(id));
    }, { what: 'the stream to catch up', timeoutMs: 20_000 });
    await waitFor(async () => (await db.owner.query('select 1 from stream_gaps')).rows.length === 0, 'gaps to be cleared');

    // Live again: a new fix is appended directly.
    const after = before + 100_000;
    await client.publishAsync(topic, gps(after), { qos: 1 });
    const { rows: [last] } = await db.owner.query<{ id: string }>(
      'select id from positions where device_id = $1 and ts = to_timestamp($2::float8 / 1000)', [device.id, after]);
    await waitFor(async () => (await streamedIds()).has(last!.id), 'the live fix');
    await client.endAsync();
  });
});
