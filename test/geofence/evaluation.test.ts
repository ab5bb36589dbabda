import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GeofenceWorker } from '../../services/geofence/geofence-worker.js';
import { encodePosition, PAYLOAD_FIELD, recordEntries, shardKey } from '../../services/shared/contracts/stream-codec.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createAsset, createDevice, createOrg, type TestOrg } from '../support/factories.js';
import { GeofenceHarness, insertFence, square, type FenceInput } from './harness.js';
import { waitFor } from '../support/wait.js';

let db: TestDatabase;
let h: GeofenceHarness;
let org: TestOrg;
let worker: GeofenceWorker;
/** Each test works at its own longitude, so that its fences never see another test's assets. */
let nextLon = 2.0;
const LAT = 48.85;
const T0 = Date.parse('2025-03-03T10:00:00Z'); // a Monday

beforeAll(async () => {
  db = await createTestDatabase();
  h = new GeofenceHarness(db);
  org = await createOrg(db.owner);
  worker = await h.startWorker();
  h.startRelay({ pollMs: 200 });
});

afterAll(async () => {
  await h?.close();
  await db?.drop();
});

/** A fresh asset with its tracker, and a way to drive it: each fix one second after the last. */
async function tracker(options: { linked?: boolean } = {}) {
  const assetId = options.linked === false ? null : await createAsset(db.owner, org.id);
  const device = await createDevice(db.owner, org.id, { assetId });
  let ts = T0;
  return {
    assetId,
    deviceId: device.id,
    fixes: (points: [lon: number, lat: number, accuracyM?: number][], at?: number) => {
      if (at !== undefined) ts = at;
      return points.map(([lon, lat, accuracyM]) =>
        h.fix({ tenantId: org.id, deviceId: device.id, assetId, lon, lat, accuracyM, tsMs: (ts += 1000) }));
    },
    lastTs: () => ts,
  };
}

async function drive(records: ReturnType<Awaited<ReturnType<typeof tracker>>['fixes']>) {
  await h.publishFixes(records);
  await h.drained();
}

const transitionsOf = async (geofenceId: string) =>
  (await h.events(org.id, 'geofence_id = $1', [geofenceId])).map((e) => ({ type: e.type, ts: (e.data as { ts: string }).ts }));

async function place(fence: Omit<FenceInput, 'geometry'> & { geometry: (lon: number) => object }) {
  const lon = (nextLon += 0.1);
  const id = await insertFence(db.owner, org.id, { ...fence, geometry: fence.geometry(lon) });
  // The worker's index for the tenant holds the fence (loaded on first use, or reloaded by the change notice).
  await waitFor(() => !worker.fences.isLoaded(org.id) || worker.fences.get(org.id).byId.has(id));
  return { id, lon };
}

const iso = (tsMs: number) => new Date(tsMs).toISOString();

describe('geofence evaluation, every shape', () => {
  it('polygon: three fixes inside confirm the entry, three outside the exit', async () => {
    const { id, lon } = await place({ name: 'Depot', geometry: (x) => ({ type: 'Polygon', coordinates: [square(x, LAT, 0.001)] }) });
    const t = await tracker();
    const outside: [number, number][] = [[lon + 0.01, LAT]];
    const inside: [number, number][] = [[lon, LAT], [lon + 0.0002, LAT], [lon, LAT + 0.0002]];
    await drive(t.fixes([...outside, ...inside]));
    const enteredAt = t.lastTs();
    await drive(t.fixes([[lon + 0.01, LAT], [lon + 0.011, LAT], [lon + 0.012, LAT]]));
    expect(await transitionsOf(id)).toEqual([
      { type: 'asset.geofence_entered', ts: iso(enteredAt) },
      { type: 'asset.geofence_exited', ts: iso(t.lastTs()) },
    ]);
    const [entered] = await h.events(org.id, 'geofence_id = $1', [id]);
    expect(entered).toMatchObject({ asset_id: t.assetId, device_id: t.deviceId, geofence_id: id });
    expect(entered!.data).toMatchObject({ asset_id: t.assetId, device_id: t.deviceId, geofence_id: id, geofence_name: 'Depot', lon: inside[2]![0], lat: inside[2]![1] });
  });

  it('multipolygon: entering either part is entering the fence', async () => {
    const { id, lon } = await place({
      geometry: (x) => ({ type: 'MultiPolygon', coordinates: [[square(x, LAT, 0.001)], [square(x + 0.01, LAT, 0.001)]] }),
    });
    const t = await tracker();
    await drive(t.fixes([[lon + 0.005, LAT], [lon + 0.01, LAT], [lon + 0.0101, LAT], [lon + 0.0102, LAT]]));
    await drive(t.fixes([[lon + 0.005, LAT], [lon + 0.005, LAT + 0.001], [lon + 0.005, LAT + 0.002]]));
    expect((await transitionsOf(id)).map((e) => e.type)).toEqual(['asset.geofence_entered', 'asset.geofence_exited']);
  });

  it('circle (Point with radius_m): by distance from the centre', async () => {
    const { id, lon } = await place({ geometry: (x) => ({ type: 'Point', coordinates: [x, LAT] }), radius_m: 100 });
    const t = await tracker();
    // 0.0005° of latitude ≈ 56 m: inside; 0.002° ≈ 222 m: outside.
    await drive(t.fixes([[lon, LAT + 0.002], [lon, LAT + 0.0005], [lon, LAT - 0.0005], [lon + 0.0005, LAT]]));
    await drive(t.fixes([[lon, LAT + 0.002], [lon, LAT - 0.002], [lon + 0.004, LAT]]));
    expect((await transitionsOf(id)).map((e) => e.type)).toEqual(['asset.geofence_entered', 'asset.geofence_exited']);
  });

  it('corridor (LineString with width_m): within half the width of the line', async () => {
    const { id, lon } = await place({ geometry: (x) => ({ type: 'LineString', coordinates: [[x, LAT], [x + 0.02, LAT], [x + 0.02, LAT + 0.01]] }), width_m: 60 });
    const t = await tracker();
    // 0.0002° of latitude ≈ 22 m from the line: inside a 60 m corridor; 0.001° ≈ 111 m: outside.
    await drive(t.fixes([[lon + 0.005, LAT + 0.001], [lon + 0.005, LAT + 0.0002], [lon + 0.01, LAT - 0.0002], [lon + 0.0201, LAT + 0.005]]));
    await drive(t.fixes([[lon + 0.01, LAT + 0.001], [lon + 0.012, LAT - 0.001], [lon + 0.014, LAT + 0.002]]));
    expect((await transitionsOf(id)).map((e) => e.type)).toEqual(['asset.geofence_entered', 'asset.geofence_exited']);
  });
});

describe('hysteresis', () => {
  it('a stray fix across the border creates nothing; consecutive ones do', async () => {
    const { id, lon } = await place({ geometry: (x) => ({ type: 'Polygon', coordinates: [square(x, LAT, 0.001)] }) });
    const t = await tracker();
    const out: [number, number] = [lon + 0.01, LAT];
    const inn: [number, number] = [lon, LAT];
    await drive(t.fixes([out, inn, out, inn, inn, out, out]));
    expect(await transitionsOf(id)).toEqual([]);
    await drive(t.fixes([inn, inn, inn]));
    expect((await transitionsOf(id)).map((e) => e.type)).toEqual(['asset.geofence_entered']);
  });

  it('fixes whose accuracy circle straddles the border are no evidence', async () => {
    const { id, lon } = await place({ geometry: (x) => ({ type: 'Polygon', coordinates: [square(x, LAT, 0.001)] }) });
    const t = await tracker();
    // 0.0001° of latitude inside the northern edge ≈ 11 m: inside, but with 50 m accuracy, unsure.
    const nearBorder: [number, number, number] = [lon, LAT + 0.0009, 50];
    await drive(t.fixes([[lon + 0.01, LAT], nearBorder, nearBorder, nearBorder, nearBorder, nearBorder]));
    expect(await transitionsOf(id)).toEqual([]);
    // The same spot with 3 m accuracy is evidence.
    await drive(t.fixes([[lon, LAT + 0.0009, 3], [lon, LAT + 0.0009, 3], [lon, LAT + 0.0009, 3]]));
    expect((await transitionsOf(id)).map((e) => e.type)).toEqual(['asset.geofence_entered']);
  });

  it('confirm_fixes set per fence (1: at once; 5: five fixes)', async () => {
    const quick = await place({ geometry: (x) => ({ type: 'Polygon', coordinates: [square(x, LAT, 0.001)] }), confirm_fixes: 1 });
    const slow = await place({ geometry: (x) => ({ type: 'Polygon', coordinates: [square(x, LAT, 0.001)] }), confirm_fixes: 5 });
    const a = await tracker();
    await drive(a.fixes([[quick.lon, LAT]]));
    expect((await transitionsOf(quick.id)).map((e) => e.type)).toEqual(['asset.geofence_entered']);
    const b = await tracker();
    await drive(b.fixes([[slow.lon, LAT], [slow.lon, LAT], [slow.lon, LAT], [slow.lon, LAT]]));
    expect(await transitionsOf(slow.id)).toEqual([]);
    await drive(b.fixes([[slow.lon, LAT]]));
    expect((await transitionsOf(slow.id)).map((e) => e.type)).toEqual(['asset.geofence_entered']);
  });

  it('fixes older than the last evaluated one create no transition', async () => {
    const { id, lon } = await place({ geometry: (x) => ({ type: 'Polygon', coordinates: [square(x, LAT, 0.001)] }) });
    const t = await tracker();
    await drive(t.fixes([[lon, LAT], [lon, LAT], [lon, LAT]], T0 + 60_000));
    // Late fixes from before, outside: a device flushing its backlog.
    await drive(t.fixes([[lon + 0.01, LAT], [lon + 0.01, LAT], [lon + 0.01, LAT], [lon + 0.01, LAT]], T0));
    expect((await transitionsOf(id)).map((e) => e.type)).toEqual(['asset.geofence_entered']);
  });
});

describe('robustness', () => {
  it('skips unreadable entries and malformed records without stalling the shard', async () => {
    const { id, lon } = await place({ geometry: (x) => ({ type: 'Polygon', coordinates: [square(x, LAT, 0.001)] }) });
    const t = await tracker();
    const [first, second, third] = t.fixes([[lon, LAT], [lon, LAT], [lon, LAT]]);
    const stream = h.streams.positionShard(h.streams.shardOf(shardKey(t.assetId, t.deviceId)));
    await h.bus.append([
      { stream, fields: { [PAYLOAD_FIELD]: 'not json' } },
      ...recordEntries(stream, [encodePosition({ ...first!, tenant_id: 'nobody' }), encodePosition({ ...first!, lat: 123 })]),
    ], 100_000);
    await drive([first!, second!, third!]);
    expect((await transitionsOf(id)).map((e) => e.type)).toEqual(['asset.geofence_entered']);
  });
});

describe('fence settings and kinds', () => {
  it('a schedule limits evidence to its active hours', async () => {
    // Active on weekdays 08:00–12:00 in Paris (UTC+1 in March): 07:00–11:00 UTC.
    const schedule = { timezone: 'Europe/Paris', windows: [{ days: [1, 2, 3, 4, 5], start: '08:00', end: '12:00' }] };
    const { id, lon } = await place({ geometry: (x) => ({ type: 'Polygon', coordinates: [square(x, LAT, 0.001)] }), schedule });
    const t = await tracker();
    const saturday = Date.parse('2025-03-08T10:00:00Z');
    await drive(t.fixes([[lon, LAT], [lon, LAT], [lon, LAT], [lon, LAT]], saturday));
    expect(await transitionsOf(id)).toEqual([]);
    const mondayEvening = Date.parse('2025-03-10T18:00:00Z');
    await drive(t.fixes([[lon, LAT], [lon, LAT], [lon, LAT]], mondayEvening));
    expect(await transitionsOf(id)).toEqual([]);
    const tuesdayMorning = Date.parse('2025-03-11T09:00:00Z');
    await drive(t.fixes([[lon, LAT], [lon, LAT], [lon, LAT]], tuesdayMorning));
    expect((await transitionsOf(id)).map((e) => e.type)).toEqual(['asset.geofence_entered']);
  });

  it('an asset filter limits the fence to the listed assets', async () => {
    const listed = await tracker();
    const other = await tracker();
    const { id, lon } = await place({
      geometry: (x) => ({ type: 'Polygon', coordinates: [square(x, LAT, 0.001)] }),
      asset_filter: { asset_ids: [listed.assetId] },
    });
    await drive([...other.fixes([[lon, LAT], [lon, LAT], [lon, LAT]]), ...listed.fixes([[lon, LAT], [lon, LAT], [lon, LAT]])]);
    const events = await h.events(org.id, 'geofence_id = $1', [id]);
    expect(events.map((e) => [e.type, e.asset_id])).toEqual([['asset.geofence_entered', listed.assetId]]);
  });

  it('a restricted fence raises a breach on entering and on leaving', async () => {
    const { id, lon } = await place({ kind: 'restricted', name: 'Quarry', geometry: (x) => ({ type: 'Polygon', coordinates: [square(x, LAT, 0.001)] }) });
    const t = await tracker();
    await drive(t.fixes([[lon, LAT], [lon, LAT], [lon, LAT]]));
    await drive(t.fixes([[lon + 0.01, LAT], [lon + 0.01, LAT], [lon + 0.01, LAT]]));
    const events = await h.events(org.id, 'geofence_id = $1', [id]);
    expect(events.map((e) => [e.type, e.data.direction ?? null])).toEqual([
      ['asset.geofence_entered', null],
      ['asset.geofence_breach', 'entered'],
      ['asset.geofence_exited', null],
      ['asset.geofence_breach', 'exited'],
    ]);
    expect(events[1]!.data).toMatchObject({ geofence_name: 'Quarry', asset_id: t.assetId, device_id: t.deviceId });
  });

  it('a device without an asset is evaluated by device, asset_id null', async () => {
    const { id, lon } = await place({ geometry: (x) => ({ type: 'Point', coordinates: [x, LAT] }), radius_m: 50 });
    const t = await tracker({ linked: false });
    await drive(t.fixes([[lon, LAT], [lon, LAT], [lon, LAT]]));
    const [event] = await h.events(org.id, 'geofence_id = $1', [id]);
    expect(event).toMatchObject({ type: 'asset.geofence_entered', asset_id: null, device_id: t.deviceId });
    expect(event!.data).toMatchObject({ asset_id: null, device_id: t.deviceId });
  });

  it('fence changes reach the running evaluator within a second, without a restart', async () => {
    const lon = (nextLon += 0.1);
    const t = await tracker();
    await drive(t.fixes([[lon, LAT]])); // the tenant's index is loaded before the fence exists
    const id = await insertFence(db.owner, org.id, { geometry: { type: 'Polygon', coordinates: [square(lon, LAT, 0.001)] } });
    await waitFor(() => worker.fences.get(org.id).byId.has(id), { timeoutMs: 1000 });
    await drive(t.fixes([[lon, LAT], [lon, LAT], [lon, LAT]]));
    expect((await transitionsOf(id)).map((e) => e.type)).toEqual(['asset.geofence_entered']);

    // Moving the fence away: the asset, still at the same spot, is now outside it.
    await asTenant(db.owner, org.id, (c) =>
      c.query('update geofences set geometry = $2 where id = $1', [id, JSON.stringify({ type: 'Polygon', coordinates: [square(lon + 0.05, LAT, 0.001)] })]));
    await waitFor(() => worker.fences.get(org.id).byId.get(id)!.contains(lon + 0.05, LAT), { timeoutMs: 1000 });
    await drive(t.fixes([[lon, LAT], [lon, LAT], [lon, LAT]]));
    expect((await transitionsOf(id)).map((e) => e.type)).toEqual(['asset.geofence_entered', 'asset.geofence_exited']);

    await asTenant(db.owner, org.id, (c) => c.query('delete from geofences where id = $1', [id]));
    await waitFor(() => !worker.fences.get(org.id).byId.has(id), { timeoutMs: 1000 });
  });
});

describe('events reach the table and events:{tenant} exactly once', () => {
  it('every event row is published once, in id order, as the event envelope', async () => {
    const { lon } = await place({ kind: 'restricted', geometry: (x) => ({ type: 'Polygon', coordinates: [square(x, LAT, 0.001)] }) });
    const t = await tracker();
    const records = t.fixes([[lon, LAT], [lon, LAT], [lon, LAT]]);
    await drive(records);
    // The same entries again (as a redelivery would): nothing new.
    await drive(records);
    await h.published(org.id);
    const rows = await h.events(org.id);
    const streamed = await h.streamedEvents(org.id);
    expect(streamed.map((e) => e.id)).toEqual(rows.map((r) => r.id));
    expect(new Set(streamed.map((e) => e.id)).size).toBe(streamed.length);
    expect(rows.map((r) => r.stream_id)).toEqual(streamed.map((e) => e.streamId));
    const last = streamed[streamed.length - 1]!;
    const row = rows[rows.length - 1]!;
    expect(last).toMatchObject({ id: row.id, event: row.type, tenant_id: org.id, occurred_at: row.occurred_at.toISOString(), data: row.data });
  });

  it('keeps tenants apart: another tenant\'s fences do not fire for this one, events go to each tenant\'s stream', async () => {
    const other = await createOrg(db.owner);
    const lon = (nextLon += 0.1);
    const theirs = await insertFence(db.owner, other.id, { geometry: { type: 'Polygon', coordinates: [square(lon, LAT, 0.001)] } });
    const t = await tracker();
    await drive(t.fixes([[lon, LAT], [lon, LAT], [lon, LAT]]));
    expect(await h.events(org.id, 'geofence_id = $1', [theirs])).toEqual([]);
    expect(await h.events(other.id)).toEqual([]);

    const asset = await createAsset(db.owner, other.id);
    const device = await createDevice(db.owner, other.id, { assetId: asset });
    await drive([1, 2, 3].map((s) => h.fix({ tenantId: other.id, deviceId: device.id, assetId: asset, lon, lat: LAT, tsMs: T0 + s * 1000 })));
    await h.published(other.id);
    expect((await h.streamedEvents(other.id)).map((e) => [e.event, e.tenant_id])).toEqual([['asset.geofence_entered', other.id]]);
    expect((await h.streamedEvents(org.id)).some((e) => e.tenant_id !== org.id)).toBe(false);
  });
});
