import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { GeofenceHarness, uuid } from './harness.js';
import { waitFor } from '../support/wait.js';

let db: TestDatabase;
let h: GeofenceHarness;
let org: TestOrg;

beforeAll(async () => {
  db = await createTestDatabase();
  h = new GeofenceHarness(db);
  org = await createOrg(db.owner);
});

afterAll(async () => {
  await h?.close();
  await db?.drop();
});

const T0 = Date.parse('2025-06-02T08:00:00Z');

describe('a shard lease that lapses and is taken again in the same lease tick', () => {
  // As after Redis restarted empty, or stalled past a lease: every renewal fails, and the same tick
  // takes the free leases back. The worker must reload those shards' states and go on evaluating them.
  it('keeps evaluating the shard', async () => {
    const worker = await h.startWorker();
    await waitFor(() => worker.evaluator.heldShards().length === db.config.POSITION_SHARDS, 'every shard held');
    const assets = Array.from({ length: 20 }, () => ({ assetId: uuid(), deviceId: uuid() }));
    const fixes = (k: number) => assets.map(({ assetId, deviceId }) =>
      h.fix({ tenantId: org.id, assetId, deviceId, lon: 7.25, lat: 43.7, tsMs: T0 + k * 1000 }));
    await h.publishFixes(fixes(0));
    await h.drained();
    const before = worker.evaluator.stats.fixes;

    const leaseKeys = Array.from({ length: db.config.POSITION_SHARDS }, (_, n) => `${db.config.REDIS_PREFIX}geofence:lease:${n}`);
    await h.redis().del(...leaseKeys);
    // The next tick finds its leases gone (lost) and the shards free (acquired again).
    await waitFor(async () => (await h.redis().exists(...leaseKeys)) === leaseKeys.length, 'the leases taken again');

    await h.publishFixes(fixes(1));
    await h.drained();
    expect(worker.evaluator.stats.fixes - before).toBe(assets.length);
    expect(worker.evaluator.heldShards()).toHaveLength(db.config.POSITION_SHARDS);
  });
});
