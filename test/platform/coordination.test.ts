import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { Coordination } from '../../services/shared/coordination.js';
import { InProcessCoordination } from '../../services/shared/in-process-coordination.js';
import { RedisCoordination } from '../../services/shared/redis-coordination.js';
import { deleteKeysWithPrefix } from '../../services/shared/redis-bus.js';
import { TEST_REDIS_URL } from '../support/database.js';

/** Leases, heartbeats and lease-fenced hashes: the same assertions on Redis and in-process. */
const prefix = `t${randomBytes(5).toString('hex')}:`;
const implementations: { name: string; sut: Coordination; cleanUp(): Promise<void> }[] = [
  { name: 'Redis', sut: new RedisCoordination(TEST_REDIS_URL), cleanUp: () => deleteKeysWithPrefix(TEST_REDIS_URL, prefix) },
  { name: 'in-process', sut: new InProcessCoordination(), cleanUp: async () => {} },
];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(implementations)('coordination: $name', ({ name, sut, cleanUp }) => {
  let n = 0;
  const key = (what: string) => `${prefix}${name}:${what}:${n++}`;

  afterAll(async () => {
    await sut.close();
    await cleanUp();
  });

  it('gives a lease to one owner at a time; only the holder renews or releases it', async () => {
    const lease = key('lease');
    expect(await sut.acquireLease(lease, 'a', 5000)).toBe(true);
    expect(await sut.acquireLease(lease, 'b', 5000)).toBe(false);
    expect(await sut.renewLease(lease, 'b', 5000)).toBe(false);
    expect(await sut.renewLease(lease, 'a', 5000)).toBe(true);
    await sut.releaseLease(lease, 'b'); // not b's: nothing happens
    expect(await sut.acquireLease(lease, 'b', 5000)).toBe(false);
    await sut.releaseLease(lease, 'a');
    expect(await sut.acquireLease(lease, 'b', 5000)).toBe(true);
  });

  it('lets a lease lapse when its holder stops renewing, and the old holder cannot renew it back', async () => {
    const lease = key('lapse');
    expect(await sut.acquireLease(lease, 'a', 60)).toBe(true);
    await sleep(120);
    expect(await sut.acquireLease(lease, 'b', 5000)).toBe(true);
    expect(await sut.renewLease(lease, 'a', 5000)).toBe(false);
  });

  it('counts live members and forgets the silent ones', async () => {
    const set = key('workers');
    const now = Date.now();
    expect(await sut.heartbeat(set, 'w1', now - 5000, 10_000)).toBe(1);
    expect(await sut.heartbeat(set, 'w2', now, 10_000)).toBe(2);
    expect(await sut.heartbeat(set, 'w2', now + 6000, 10_000)).toBe(1); // w1 last seen 11 s before
    await sut.leave(set, 'w2');
    expect(await sut.heartbeat(set, 'w3', now + 6000, 10_000)).toBe(1);
  });

  it('writes a hash only while the writer holds the lease, and reads it back whole', async () => {
    const lease = key('lease');
    const hash = key('state');
    expect(await sut.readHash(hash)).toEqual(new Map());
    await sut.acquireLease(lease, 'a', 5000);
    const many = new Map(Array.from({ length: 2500 }, (_, i) => [`asset-${i}`, `state-${i}`] as const));
    expect(await sut.writeHashIfLeaseHeld(lease, 'a', hash, many)).toBe(true);
    expect(await sut.writeHashIfLeaseHeld(lease, 'b', hash, new Map([['asset-1', 'stolen']]))).toBe(false);
    const read = await sut.readHash(hash);
    expect(read.size).toBe(2500);
    expect(read.get('asset-1')).toBe('state-1');
    expect(read.get('asset-2499')).toBe('state-2499');
  });
});
