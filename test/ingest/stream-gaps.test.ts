import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createDevice, createOrg, type TestOrg } from '../support/factories.js';
import { freePort } from '../support/platform.js';
import { strictly } from '../support/streams.js';
import { waitFor } from '../support/wait.js';
import { startBenchServer } from '../../bench/lib/bench-env.js';
import type { PlatformReady } from '../../bench/lib/platform-server.js';
import { encodeGpsBatch } from '../../ingest/proto.js';
import { decodePositions, positionEntries, shardKey } from '../../services/shared/contracts/stream-codec.js';
import { connectDevice, ScratchRedis, startIngest, type IngestUnderTest } from './support.js';

let db: TestDatabase;
let redis: ScratchRedis;
let org: TestOrg;

beforeAll(async () => {
  redis = new ScratchRedis(await freePort());
  await redis.start();
  db = await createTestDatabase({ REDIS_URL: redis.url });
  org = await createOrg(db.owner);
});

afterAll(async () => {
  redis?.resume();
  await redis?.stop();
  await db?.drop();
});

/** The fix times of a device's entries in its position shard, in stream order. */
async function streamedTimes(sut: IngestUnderTest, deviceId: string): Promise<number[]> {
  const runtime = sut.platform.runtime;
  const stream = runtime.streams.positionShard(runtime.streams.shardOf(shardKey(null, deviceId)));
  return decodePositions(await runtime.bus().range(stream, '-', '+', 100_000), strictly).filter((r) => r.device_id === deviceId).map((r) => r.ts_ms);
}

async function gapCount(): Promise<number> {
  const { rows } = await db.owner.query<{ n: string }>('select count(*) as n from stream_gaps');
  return Number(rows[0]!.n);
}

/** The environment of `fieldops start --role ingest` in a process of its own, on this test's database and Redis. */
function childEnv(): Record<string, string> {
  const c = db.config;
  return {
    DATABASE_URL: c.DATABASE_URL, REDIS_URL: c.REDIS_URL, REDIS_PREFIX: c.REDIS_PREFIX, DATA_DIR: c.DATA_DIR, JWT_SECRET: c.jwtSecret,
    HOST: '127.0.0.1', MQTT_PORT: '0', REALTIME_PORT: '0', LOG_LEVEL: 'silent', FIELDOPS_DEMO: '0', MIGRATE_ON_START: 'false',
  };
}

describe('the position stream after a crash', () => {
  it('appends, on the next start, fixes committed by a process killed before it could append them — in commit order', { timeout: 60_000 }, async () => {
    const device = await createDevice(db.owner, org.id);
    const first = await startBenchServer<PlatformReady>('lib/platform-server.ts', { ...childEnv(), BENCH_ROLES: 'ingest' });
    let restarted: IngestUnderTest | null = null;
    try {
      const client = await connectDevice(`mqtt://127.0.0.1:${first.ready.mqttPort!}`, device.id, device.token);
      const base = Date.now() - 60_000;
      redis.pause(); // the appends hang (the publisher's timeout is 5 s): the fixes are committed and acknowledged, not streamed
      for (let k = 0; k < 3; k++) {
        await client.publishAsync(`fieldops/${device.id}/gps`, Buffer.from(encodeGpsBatch({ fixes: [{ ts_ms: base + k * 1000, lat: 45, lon: 7 }] })), { qos: 1 });
      }
      first.child.kill('SIGKILL');
      client.end(true);
      redis.resume();
      const { rows } = await db.owner.query<{ n: string }>('select count(*) as n from positions where device_id = $1', [device.id]);
      expect(Number(rows[0]!.n)).toBe(3);

      restarted = await startIngest(db.config);
      // An append the frozen Redis took before the kill lands as well: the replay leaves out what it finds there.
      const times = await waitFor(async () => {
        const found = await streamedTimes(restarted!, device.id);
        return found.length >= 3 && found;
      }, 'the committed fixes in the stream');
      await new Promise((r) => setTimeout(r, 300));
      expect(await streamedTimes(restarted, device.id)).toEqual(times);
      expect(times).toEqual([base, base + 1000, base + 2000]);
      await waitFor(async () => (await gapCount()) === 0, 'the replayed gaps cleared');
    } finally {
      redis.resume();
      if (first.child.exitCode === null) first.child.kill('SIGKILL');
      await restarted?.close();
    }
  });

  it('replays gaps in the order their batches were cut, not by row id', async () => {
    const device = await createDevice(db.owner, org.id);
    const t0 = Date.now() - 120_000;
    // Batch A was cut first but got the higher ids (ids come in blocks per process); batch B after it.
    const insert = (id: number, tsMs: number) => db.owner.query(
      'insert into positions (id, tenant_id, device_id, ts, lat, lon) values ($1, $2, $3, $4, 46, 8)', [id, org.id, device.id, new Date(tsMs)]);
    for (let k = 0; k < 3; k++) await insert(900_000_001 + k, t0 + k * 1000);
    for (let k = 3; k < 6; k++) await insert(800_000_001 + k, t0 + k * 1000);
    await db.owner.query(`insert into stream_gaps (stream, first_id, last_id, run_id, cut_key, expires_at) values
      ('positions', 900000001, 900000003, 7, 1000, null), ('positions', 800000004, 800000006, 7, 2000, now() + interval '1 hour')`);
    const sut = await startIngest(db.config); // a provisional gap of another run: left by a crash, replayed at start
    try {
      const times = await waitFor(async () => {
        const found = await streamedTimes(sut, device.id);
        return found.length >= 6 && found;
      }, 'the gap rows in the stream');
      expect(times).toEqual([0, 1, 2, 3, 4, 5].map((k) => t0 + k * 1000));
      await waitFor(async () => (await gapCount()) === 0, 'the replayed gaps cleared');
    } finally {
      await sut.close();
    }
  });

  it('adopts the expired provisional gap of a node that died, appending only the rows the stream lacks', async () => {
    const device = await createDevice(db.owner, org.id);
    const sut = await startIngest(db.config);
    try {
      const t0 = Date.now() - 90_000;
      const ids = [700_000_001, 700_000_002, 700_000_003];
      for (const [k, id] of ids.entries()) {
        await db.owner.query('insert into positions (id, tenant_id, device_id, ts, lat, lon) values ($1, $2, $3, $4, 46, 8)',
          [id, org.id, device.id, new Date(t0 + k * 1000)]);
      }
      // The dead node appended the first row, then died before appending the others or deleting its gap.
      const runtime = sut.platform.runtime;
      const first = { id: String(ids[0]), tenant_id: org.id, device_id: device.id, asset_id: null, ts_ms: t0, lat: 46, lon: 8,
        speed_mps: null, heading_deg: null, accuracy_m: null, altitude_m: null, battery_pct: null, seq: null };
      await runtime.bus().append(positionEntries(runtime.streams, [first]), 1000);
      await db.owner.query(`insert into stream_gaps (stream, first_id, last_id, run_id, cut_key, expires_at)
        values ('positions', $1, $2, 9, 1, now() - interval '1 second')`, [ids[0], ids[2]]);
      const times = await waitFor(async () => {
        const found = await streamedTimes(sut, device.id);
        return found.length >= 3 && found;
      }, { what: 'the adopted gap in the stream', timeoutMs: 20_000 });
      expect(times).toEqual([t0, t0 + 1000, t0 + 2000]);
      await waitFor(async () => (await gapCount()) === 0, 'the adopted gap cleared');
    } finally {
      await sut.close();
    }
  });

  it('leaves no provisional gap behind once the rows are appended, nor for a batch of retransmissions only', async () => {
    const device = await createDevice(db.owner, org.id);
    const sut = await startIngest(db.config);
    try {
      const client = await connectDevice(sut.mqttUrl, device.id, device.token);
      const base = Date.now() - 30_000;
      for (const _round of ['sent', 'sent again']) {
        for (let k = 0; k < 5; k++) {
          await client.publishAsync(`fieldops/${device.id}/gps`, Buffer.from(encodeGpsBatch({ fixes: [{ ts_ms: base + k, lat: 45, lon: 7 }] })), { qos: 1 });
        }
      }
      await waitFor(async () => (await streamedTimes(sut, device.id)).length === 5, 'the fixes in the stream');
      await waitFor(async () => (await gapCount()) === 0, 'the provisional gaps cleared');
      await client.endAsync();
    } finally {
      await sut.close();
    }
  });
});
