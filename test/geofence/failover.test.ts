import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GeofenceWorker } from '../../services/geofence/geofence-worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { GeofenceHarness, insertFence, square, uuid } from './harness.js';
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

const LON = 7.25;
const LAT = 43.7;
const T0 = Date.parse('2025-06-02T08:00:00Z');

describe('two evaluators in one consumer group', () => {
  it('split the shards, and when one dies mid-batch the other takes over: no event lost, none duplicated', async () => {
    const fenceId = await insertFence(db.owner, org.id, { kind: 'restricted', geometry: { type: 'Polygon', coordinates: [square(LON, LAT, 0.002)] } });
    let armed = false;
    let killedWith = 0;
    let a: GeofenceWorker | null = null;
    a = await h.startWorker({
      // Dies right after committing a batch that wrote events, before saving state or acknowledging.
      afterEventsCommitted: (newEvents) => {
        if (armed && newEvents > 0 && killedWith === 0) {
          killedWith = newEvents;
          void a!.kill();
        }
      },
    });
    const b = await h.startWorker();
    h.startRelay();
    h.startRelay(); // a standby relay: events must still be streamed once

    await waitFor(() => a!.evaluator.heldShards().length === 2 && b.evaluator.heldShards().length === 2);
    expect([...a.evaluator.heldShards(), ...b.evaluator.heldShards()].sort()).toEqual([0, 1, 2, 3]);

    const assets = Array.from({ length: 40 }, () => ({ assetId: uuid(), deviceId: uuid() }));
    const track = (phase: number, lon: number) =>
      assets.flatMap(({ assetId, deviceId }) => [0, 1, 2].map((k) =>
        h.fix({ tenantId: org.id, assetId, deviceId, lon: lon + k * 0.0001, lat: LAT, tsMs: T0 + phase * 10_000 + k * 1000 })));

    // Phase 0, outside: both workers take part.
    await h.publishFixes(track(0, LON + 0.01));
    await h.drained();
    expect(a.evaluator.stats.fixes).toBeGreaterThan(0);
    expect(b.evaluator.stats.fixes).toBeGreaterThan(0);

    // Phase 1, inside: A commits its first batch of entries, then dies before acknowledging it.
    armed = true;
    await h.publishFixes(track(1, LON));
    await waitFor(() => killedWith > 0);
    // B takes over A's shards once A's leases lapse, and replays what A left pending.
    await waitFor(() => b.evaluator.heldShards().length === 4);
    await h.drained();

    // Phase 2, outside again: B alone.
    await h.publishFixes(track(2, LON + 0.01));
    await h.drained();

    const expected = assets.flatMap(({ assetId }) => [
      `asset.geofence_entered ${assetId} ${new Date(T0 + 10_000 + 2000).toISOString()}`,
      `asset.geofence_breach ${assetId} ${new Date(T0 + 10_000 + 2000).toISOString()}`,
      `asset.geofence_exited ${assetId} ${new Date(T0 + 20_000 + 2000).toISOString()}`,
      `asset.geofence_breach ${assetId} ${new Date(T0 + 20_000 + 2000).toISOString()}`,
    ]).sort();
    const rows = await h.events(org.id, 'geofence_id = $1', [fenceId]);
    expect(rows.map((e) => `${e.type} ${e.asset_id} ${e.data.ts}`).sort()).toEqual(expected);

    await h.published(org.id);
    const streamed = await h.streamedEvents(org.id);
    expect(streamed.map((e) => `${e.event} ${e.data.asset_id} ${e.data.ts}`).sort()).toEqual(expected);
    expect(new Set(streamed.map((e) => e.id)).size).toBe(streamed.length);
  });
});
