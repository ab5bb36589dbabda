import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { StreamBus } from '../../services/shared/bus.js';
import { InProcessStreams } from '../../services/shared/in-process-bus.js';
import { deleteKeysWithPrefix, RedisStreamBus } from '../../services/shared/redis-bus.js';
import { TEST_REDIS_URL } from '../support/database.js';
import { streamIdBefore } from '../../services/shared/stream-ids.js';

/**
 * The same assertions against both implementations of StreamBus: Redis (production, several
 * processes) and in-process (the one-process start). The roles rely on exactly these semantics.
 */
interface BusUnderTest {
  name: string;
  /** A new handle on the same streams (each blocking loop takes one, as each takes a Redis connection). */
  connect(): StreamBus;
  cleanUp(): Promise<void>;
}

const prefix = `t${randomBytes(5).toString('hex')}:`;
const inProcess = new InProcessStreams();
const implementations: BusUnderTest[] = [
  {
    name: 'Redis',
    connect: () => new RedisStreamBus(TEST_REDIS_URL, prefix),
    cleanUp: () => deleteKeysWithPrefix(TEST_REDIS_URL, prefix),
  },
  { name: 'in-process', connect: () => inProcess.connect(), cleanUp: async () => {} },
];

describe.each(implementations)('stream bus: $name', (impl) => {
  const handles: StreamBus[] = [];
  const connect = () => {
    const bus = impl.connect();
    handles.push(bus);
    return bus;
  };
  const sut = connect();
  let n = 0;
  const fresh = (what: string) => `${prefix}${impl.name}:${what}:${n++}`;

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.close()));
    await impl.cleanUp();
  });

  async function fill(stream: string, count: number, maxLen = 1_000_000): Promise<string[]> {
    return sut.append(Array.from({ length: count }, (_, i) => ({ stream, fields: { p: String(i) } })), maxLen);
  }
  const idsOf = async (stream: string) => (await sut.range(stream, '-', '+', 10_000)).map((e) => e.id);

  describe('appending and reading back', () => {
    it('returns increasing ids in order, and ranges give the entries back with their fields', async () => {
      const stream = fresh('s');
      const ids = await sut.append([
        { stream, fields: { p: 'a', q: '1' } },
        { stream, fields: { p: 'b' } },
        { stream, fields: { p: 'c' } },
      ], 1000);
      expect(ids).toHaveLength(3);
      expect(ids.every((id) => /^\d+-\d+$/.test(id))).toBe(true);
      expect(new Set(ids).size).toBe(3);
      const entries = await sut.range(stream, '-', '+', 100);
      expect(entries).toEqual([
        { id: ids[0], fields: { p: 'a', q: '1' } },
        { id: ids[1], fields: { p: 'b' } },
        { id: ids[2], fields: { p: 'c' } },
      ]);
      expect((await sut.range(stream, `(${ids[0]}`, '+', 100)).map((e) => e.id)).toEqual(ids.slice(1));
      expect((await sut.range(stream, ids[1]!, ids[1]!, 100)).map((e) => e.id)).toEqual([ids[1]]);
      expect((await sut.range(stream, '-', '+', 2)).map((e) => e.id)).toEqual(ids.slice(0, 2));
      expect(await sut.firstId(stream)).toBe(ids[0]);
      expect(await sut.lastId(stream)).toBe(ids[2]);
    });

    it('knows no ids of a stream that does not exist', async () => {
      const stream = fresh('none');
      expect(await sut.firstId(stream)).toBe('0-0');
      expect(await sut.lastId(stream)).toBe('0-0');
      expect(await sut.range(stream, '-', '+', 10)).toEqual([]);
    });

    it('keeps a stream near its MAXLEN, newest entries first to stay', async () => {
      const stream = fresh('capped');
      let ids: string[] = [];
      for (let i = 0; i < 10; i++) ids = ids.concat(await fill(stream, 200, 100));
      const kept = await idsOf(stream);
      expect(kept.length).toBeGreaterThanOrEqual(100);
      expect(kept.length).toBeLessThan(400);
      expect(kept).toEqual(ids.slice(-kept.length));
    });

    it('appends an entry once per once-key and gives a retry the first id', async () => {
      const stream = fresh('once');
      const [first] = await sut.appendOnce([{ stream, fields: { p: 'x' }, onceKey: `${stream}:event:1` }], 1000, 60);
      const [again, other] = await sut.appendOnce([
        { stream, fields: { p: 'x' }, onceKey: `${stream}:event:1` },
        { stream, fields: { p: 'y' }, onceKey: `${stream}:event:2` },
      ], 1000, 60);
      expect(again).toBe(first);
      expect(other).not.toBe(first);
      expect((await sut.range(stream, '-', '+', 10)).map((e) => e.fields.p)).toEqual(['x', 'y']);
    });
  });

  describe('blocking reads', () => {
    it('returns what follows each cursor, only for streams that have something', async () => {
      const [a, b, c] = [fresh('a'), fresh('b'), fresh('c')];
      const [a1, a2] = await fill(a, 2);
      const [b1] = await fill(b, 1);
      const batches = await sut.read({ [a]: a1!, [b]: '0-0', [c]: '0-0' }, { blockMs: 50, count: 10 });
      expect(batches.map((x) => ({ stream: x.stream, ids: x.entries.map((e) => e.id) })).sort((x, y) => x.stream.localeCompare(y.stream)))
        .toEqual([{ stream: a, ids: [a2] }, { stream: b, ids: [b1] }]);
    });

    it('waits for the next entry on any of its streams, and gives up empty after its block time', async () => {
      const reader = connect();
      const [a, b] = [fresh('a'), fresh('b')];
      const started = Date.now();
      expect(await reader.read({ [a]: '0-0', [b]: '0-0' }, { blockMs: 150, count: 10 })).toEqual([]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(120);

      const pending = reader.read({ [a]: '0-0', [b]: '0-0' }, { blockMs: 5000, count: 10 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const [id] = await sut.append([{ stream: b, fields: { p: 'wake' } }], 1000);
      const batches = await pending;
      expect(batches).toEqual([{ stream: b, entries: [{ id, fields: { p: 'wake' } }] }]);
      expect(Date.now() - started).toBeLessThan(3000);
    });

    it('reads at most count entries per stream', async () => {
      const stream = fresh('counted');
      const ids = await fill(stream, 5);
      const [batch] = await sut.read({ [stream]: '0-0' }, { blockMs: 10, count: 3 });
      expect(batch!.entries.map((e) => e.id)).toEqual(ids.slice(0, 3));
    });

    it("reads from a moment by the bus's clock: every entry stamped from that millisecond on, none before", async () => {
      const stream = fresh('clock');
      const [before] = await fill(stream, 1);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const from = await sut.serverTimeMs();
      const after = await fill(stream, 2);
      const read = await sut.read({ [stream]: streamIdBefore(from) }, { blockMs: 100, count: 10 });
      expect(read.flatMap((b) => b.entries.map((e) => e.id))).toEqual(after);
      expect(Number(before!.split('-')[0])).toBeLessThan(from);
    });

    it('ends a blocked read promptly when its bus is closed', async () => {
      const reader = impl.connect();
      const stream = fresh('closing');
      const pending = reader.read({ [stream]: '0-0' }, { blockMs: 10_000, count: 10 }).then(() => 'returned', () => 'failed');
      await new Promise((resolve) => setTimeout(resolve, 50));
      const started = Date.now();
      await reader.close();
      expect(['returned', 'failed']).toContain(await pending);
      expect(Date.now() - started).toBeLessThan(1000);
    });
  });

  describe('consumer groups', () => {
    it('hands each entry to one consumer, keeps it pending until acknowledged, and lets another claim it once idle', async () => {
      const stream = fresh('group');
      await sut.ensureGroup(stream, 'g', '0');
      await sut.ensureGroup(stream, 'g', '0'); // idempotent
      const ids = await fill(stream, 4);
      const w1 = connect();
      const w2 = connect();
      const [first] = await w1.readGroup('g', 'w1', [stream], { blockMs: 10, count: 3 });
      expect(first!.entries.map((e) => e.id)).toEqual(ids.slice(0, 3));
      const [second] = await w2.readGroup('g', 'w2', [stream], { blockMs: 10, count: 10 });
      expect(second!.entries.map((e) => e.id)).toEqual(ids.slice(3));
      expect(await w2.readGroup('g', 'w2', [stream], { blockMs: 10, count: 10 })).toEqual([]);

      await w1.ack(stream, 'g', [ids[0]!]);
      expect(await w2.claimIdle(stream, 'g', 'w2', 60_000, 10)).toEqual([]); // not idle long enough
      await new Promise((resolve) => setTimeout(resolve, 30));
      const claimed = await w2.claimIdle(stream, 'g', 'w2', 20, 10);
      // w1's unacknowledged entries, and w2's own (idle too); never the acknowledged one.
      expect(claimed.map((e) => e.id)).toEqual(ids.slice(1));
      expect(claimed[0]!.fields).toEqual({ p: '1' });
      // Claiming resets the idle time.
      expect(await w1.claimIdle(stream, 'g', 'w1', 1000, 10)).toEqual([]);
      await w2.ack(stream, 'g', ids.slice(1));
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(await w1.claimIdle(stream, 'g', 'w1', 20, 10)).toEqual([]);
    });

    it('wakes a consumer blocked on several streams when one of them gets an entry', async () => {
      const [a, b] = [fresh('ga'), fresh('gb')];
      await sut.ensureGroup(a, 'g', '0');
      await sut.ensureGroup(b, 'g', '0');
      const worker = connect();
      const pending = worker.readGroup('g', 'w', [a, b], { blockMs: 5000, count: 10 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const [id] = await fill(a, 1);
      expect(await pending).toEqual([{ stream: a, entries: [{ id, fields: { p: '0' } }] }]);
    });

    it('starts a group at the end of the stream with $', async () => {
      const stream = fresh('dollar');
      await fill(stream, 3);
      await sut.ensureGroup(stream, 'late', '$');
      const [later] = await fill(stream, 1);
      const [batch] = await sut.readGroup('late', 'w', [stream], { blockMs: 10, count: 10 });
      expect(batch!.entries.map((e) => e.id)).toEqual([later]);
    });

    it('refuses a read for a group that does not exist', async () => {
      const stream = fresh('nogroup');
      await fill(stream, 1);
      await expect(sut.readGroup('missing', 'w', [stream], { blockMs: 10, count: 10 })).rejects.toThrow(/NOGROUP/);
    });
  });

  describe('trimming a stream by its consumer group', () => {
    it('keeps every entry the group has not been handed or has not acknowledged', async () => {
      const stream = fresh('positions');
      await sut.ensureGroup(stream, 'geofence', '0');
      const ids = await fill(stream, 10);
      const [handed] = await sut.readGroup('geofence', 'w1', [stream], { blockMs: 10, count: 6 });
      expect(handed!.entries.map((e) => e.id)).toEqual(ids.slice(0, 6));
      await sut.ack(stream, 'geofence', ids.slice(0, 4));

      await sut.trimConsumed(stream, 'geofence');
      expect(await idsOf(stream)).toEqual(ids.slice(4));
      expect(await sut.firstId(stream)).toBe(ids[4]);

      await sut.ack(stream, 'geofence', ids.slice(4, 6));
      await sut.trimConsumed(stream, 'geofence');
      expect(await idsOf(stream)).toEqual(ids.slice(5));
      expect(await sut.lastId(stream)).toBe(ids[9]);
    });

    it('keeps what another group of the stream has not acknowledged yet', async () => {
      const stream = fresh('positions');
      await sut.ensureGroup(stream, 'geofence', '0');
      await sut.ensureGroup(stream, 'audit', '0');
      const ids = await fill(stream, 8);
      await sut.readGroup('geofence', 'w1', [stream], { blockMs: 10, count: 8 });
      await sut.ack(stream, 'geofence', ids);
      const [audited] = await sut.readGroup('audit', 'a1', [stream], { blockMs: 10, count: 3 });
      await sut.ack(stream, 'audit', audited!.entries.map((e) => e.id));

      await sut.trimConsumed(stream, 'geofence');
      expect(await idsOf(stream)).toEqual(ids.slice(2));
    });

    it('leaves a stream alone when the group does not exist (nobody has evaluated anything)', async () => {
      const stream = fresh('positions');
      const ids = await fill(stream, 5);
      await sut.trimConsumed(stream, 'geofence');
      await sut.trimConsumed(fresh('no-such-stream'), 'geofence');
      expect(await idsOf(stream)).toEqual(ids);
    });

    it('drops a trimmed entry from the pending list when it is claimed', async () => {
      const stream = fresh('trimmed-pending');
      await sut.ensureGroup(stream, 'g', '0');
      const ids = await fill(stream, 300);
      await sut.readGroup('g', 'w1', [stream], { blockMs: 10, count: 300 });
      await fill(stream, 1000, 100); // MAXLEN drops the old, still pending, entries
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await sut.firstId(stream)).not.toBe(ids[0]);
      expect(await sut.claimIdle(stream, 'g', 'w2', 10, 1000)).toEqual([]);
    });
  });
});
