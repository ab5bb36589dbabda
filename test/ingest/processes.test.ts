import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createDevice, createOrg, type TestOrg } from '../support/factories.js';
import { encodeGpsBatch } from '../../ingest/proto.js';
import { decodePositions } from '../../services/shared/contracts/stream-codec.js';
import { strictly } from '../support/streams.js';
import { closed, connectDevice, startIngest, type IngestUnderTest } from './support.js';
import { waitFor } from '../support/wait.js';

let db: TestDatabase;
let sut: IngestUnderTest;
let org: TestOrg;

/** The further ingest processes the role started (children of this test process). */
function ingestChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('mqtt-process')) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

function socketCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
}

beforeAll(async () => {
  db = await createTestDatabase();
  sut = await startIngest({ ...db.config, INGEST_PROCESSES: 2 });
  org = await createOrg(db.owner);
});

afterAll(async () => {
  await sut?.close();
  await db?.drop();
});

describe('INGEST_PROCESSES=2: two processes share the MQTT port', () => {
  it('spreads devices over both processes; every acknowledged fix is stored once and streamed', async () => {
    const [child] = ingestChildren();
    expect(child).toBeDefined();
    const socketsBefore = socketCount(child!);
    const devices = await Promise.all(Array.from({ length: 30 }, () => createDevice(db.owner, org.id)));
    const clients: MqttClient[] = [];
    for (const d of devices) clients.push(await connectDevice(sut.mqttUrl, d.id, d.token));
    expect(socketCount(child!)).toBeGreaterThan(socketsBefore); // the second process took some of the connections

    const tsBase = Date.now() - 600_000;
    await Promise.all(clients.map(async (client, i) => {
      for (let k = 0; k < 5; k++) {
        const fix = { ts_ms: tsBase + k * 1000, lat: 50 + i / 100, lon: 8, seq: k };
        await client.publishAsync(`fieldops/${devices[i]!.id}/gps`, Buffer.from(encodeGpsBatch({ fixes: [fix] })), { qos: 1 });
        await client.publishAsync(`fieldops/${devices[i]!.id}/gps`, Buffer.from(encodeGpsBatch({ fixes: [fix] })), { qos: 1 }); // a retransmission
      }
    }));
    const ids = devices.map((d) => d.id);
    const { rows } = await db.owner.query<{ n: string; keys: string }>(
      'select count(*) as n, count(distinct (device_id, ts)) as keys from positions where device_id = any($1::uuid[])', [ids]);
    expect(rows[0]).toEqual({ n: '150', keys: '150' });

    const runtime = sut.platform.runtime;
    const streamed = await waitFor(async () => {
      const seen = new Set<string>();
      for (let shard = 0; shard < runtime.config.POSITION_SHARDS; shard++) {
        for (const r of decodePositions(await runtime.bus().range(runtime.streams.positionShard(shard), '-', '+', 10_000), strictly)) {
          if (ids.includes(r.device_id)) seen.add(`${r.device_id}|${r.ts_ms}`);
        }
      }
      return seen.size === 150 && seen;
    }, 'every fix in the position streams');
    expect(streamed.size).toBe(150);
    await Promise.all(clients.map((c) => c.endAsync()));
  });

  it('cuts off a disabled device in whichever process holds its connections', async () => {
    // One connection per device (client id = device id): six devices, spread by the kernel over both processes.
    const victims = await Promise.all(Array.from({ length: 6 }, () => createDevice(db.owner, org.id)));
    const clients = await Promise.all(victims.map((v) => connectDevice(sut.mqttUrl, v.id, v.token)));
    const gone = Promise.all(clients.map(closed));
    await asTenant(db.owner, org.id, (tx) => tx.query('update devices set disabled_at = now() where id = any($1::uuid[])', [victims.map((v) => v.id)]));
    await gone;
    expect(clients.every((c) => !c.connected)).toBe(true);
  });

  it('stops the further processes when the role closes', async () => {
    const children = ingestChildren();
    expect(children.length).toBe(1);
    await sut.close();
    expect(ingestChildren()).toEqual([]);
  });
});
