/**
 * `npm run bench -- geofence [--duration 2s] [--no-e2e] [--e2e-fixes=200000]` (`--seconds=2` as before)
 *
 * 1. The evaluator core, in process on one core, no I/O: fixes/s against 10, 1,000 and 10,000
 *    16-vertex polygon fences of one tenant — indexed (flatbush + exact test + hysteresis state) and
 *    naive (turf's booleanPointInPolygon over every fence), side by side.
 * 2. The role end to end: fixes XADDed to `positions:{n}` beforehand, then one GeofenceWorker reads
 *    them through the consumer group, evaluates, writes events, saves states and acknowledges;
 *    fixes/s until the group has acknowledged everything. Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL).
 */
import { booleanPointInPolygon, polygon as turfPolygon } from '@turf/turf';
import { newAssetState, type AssetState } from '../services/geofence/asset-state.js';
import { evaluateFix, type Transition } from '../services/geofence/fence-evaluator.js';
import { FenceIndex } from '../services/geofence/fence-index.js';
import { compileFence, type FenceRow } from '../services/shared/geofence/fence-shapes.js';
import { GeofenceWorker } from '../services/geofence/geofence-worker.js';
import { createBenchDatabase, seedBenchTenant } from './lib/bench-env.js';
import { row, target, withRatios, type BenchTable, type RoleUsage, type ScenarioResult } from './lib/bench-result.js';
import { RoleSampler } from './lib/proc-stats.js';
import { pick, type ScenarioContext } from './lib/scenario.js';
import { createBackplane } from '../services/shared/backplane.js';
import { createServicePool, withTenant } from '../services/shared/db.js';
import { createLogger } from '../services/shared/log.js';
import { createRedis, RedisStreamBus } from '../services/shared/redis-bus.js';
import { encodePosition, recordEntries, shardKey, streamNames, type PositionRecord } from '../services/shared/contracts/stream-codec.js';

const FENCE_COUNTS = [10, 1_000, 10_000];
const VERTICES = 16;
/** Fences spread over 1° × 1° from (2.0, 48.5): about 111 km × 74 km. */
const ORIGIN = { lon: 2.0, lat: 48.5 };
const ASSETS = 10_000;

/** A deterministic generator, so that runs compare. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32;
}

/** Star-shaped 16-gons (radius 60–300 m, jittered per vertex): always simple. */
function makeFences(count: number, rand: () => number): FenceRow[] {
  return Array.from({ length: count }, (_, i) => {
    const lon = ORIGIN.lon + rand();
    const lat = ORIGIN.lat + rand();
    const radiusM = 60 + rand() * 240;
    const ring: [number, number][] = [];
    for (let v = 0; v < VERTICES; v++) {
      const angle = (2 * Math.PI * v) / VERTICES;
      const r = radiusM * (0.75 + rand() * 0.25);
      ring.push([lon + (r * Math.cos(angle)) / (111_195 * Math.cos((lat * Math.PI) / 180)), lat + (r * Math.sin(angle)) / 111_195]);
    }
    ring.push(ring[0]!);
    return {
      id: `fence-${i}`, tenant_id: 'bench', name: `Fence ${i}`, kind: 'zone', geometry: { type: 'Polygon', coordinates: [ring] },
      radius_m: null, width_m: null, confirm_fixes: 3, schedule: null, asset_filter: null,
    };
  });
}

/**
 * Assets driving: each starts within ~300 m of a fence and moves 25 m per fix with gentle turns,
 * so that fixes cross borders and transitions happen as they would on the road.
 */
function makeFixes(count: number, fences: FenceRow[], rand: () => number, assets: number, tenantId = 'bench'): PositionRecord[] {
  const mPerDegLat = 111_195;
  const mPerDegLon = mPerDegLat * Math.cos((ORIGIN.lat * Math.PI) / 180);
  const fleet = Array.from({ length: assets }, () => {
    const ring = (fences[Math.floor(rand() * fences.length)]!.geometry.coordinates as [number, number][][])[0]!;
    return { lon: ring[0]![0] + ((rand() - 0.5) * 600) / mPerDegLon, lat: ring[4]![1] + ((rand() - 0.5) * 600) / mPerDegLat, heading: rand() * 2 * Math.PI };
  });
  const fixes: PositionRecord[] = [];
  for (let i = 0; i < count; i++) {
    const a = i % assets;
    const asset = fleet[a]!;
    asset.heading += (rand() - 0.5) * 0.6;
    asset.lon += (25 * Math.cos(asset.heading)) / mPerDegLon;
    asset.lat += (25 * Math.sin(asset.heading)) / mPerDegLat;
    fixes.push({
      id: String(i), tenant_id: tenantId, device_id: deviceUuid(a), asset_id: null, ts_ms: 1_700_000_000_000 + i,
      lat: asset.lat, lon: asset.lon, speed_mps: 10, heading_deg: 0, accuracy_m: 5 + rand() * 15, altitude_m: null, battery_pct: null, seq: null,
    });
  }
  return fixes;
}

function rate(seconds: number, run: (deadline: number) => number): number {
  const start = performance.now();
  const done = run(start + seconds * 1000);
  return done / ((performance.now() - start) / 1000);
}

function benchCore(seconds: number) {
  const rows: { fences: number; indexed_fixes_per_s: number; naive_fixes_per_s: number; speedup: number; transitions_per_1k_fixes: number }[] = [];
  for (const count of FENCE_COUNTS) {
    const rand = random(count);
    const fenceRows = makeFences(count, rand);
    const fixes = makeFixes(200_000, fenceRows, rand, ASSETS);
    const index = new FenceIndex(fenceRows.map((r) => compileFence(r)!));
    const states = new Map<string, AssetState>();
    const transitions: Transition[] = [];
    let evaluated = 0;
    const indexed = rate(seconds, (deadline) => {
      let n = 0;
      for (;;) {
        for (let k = 0; k < 1000; k++, n++) {
          // Keep time moving on later laps, as the stream would.
          if (n > 0 && n % fixes.length === 0) for (const f of fixes) f.ts_ms += fixes.length;
          const fix = fixes[n % fixes.length]!;
          let state = states.get(fix.device_id);
          if (!state) states.set(fix.device_id, (state = newAssetState()));
          evaluateFix(index, state, fix, transitions);
        }
        if (performance.now() > deadline) return (evaluated = n);
      }
    });

    const turfFences = fenceRows.map((r) => turfPolygon(r.geometry.coordinates as [number, number][][]));
    const naive = rate(seconds, (deadline) => {
      let n = 0;
      let inside = 0;
      for (;;) {
        const fix = fixes[n % fixes.length]!;
        for (const fence of turfFences) if (booleanPointInPolygon([fix.lon, fix.lat], fence)) inside++;
        n++;
        if (performance.now() > deadline) return inside >= 0 ? n : 0;
      }
    });
    rows.push({
      fences: count,
      indexed_fixes_per_s: Math.round(indexed),
      naive_fixes_per_s: Math.round(naive),
      speedup: Math.round(indexed / naive),
      transitions_per_1k_fixes: Math.round((transitions.length / evaluated) * 1000 * 10) / 10,
    });
  }
  return rows;
}

async function benchEndToEnd(totalFixes: number, sampler: RoleSampler, roles: RoleUsage[]) {
  const bench = await createBenchDatabase({ LOG_LEVEL: 'silent' });
  const { config, owner } = bench;
  const redis = createRedis(config.REDIS_URL);
  const bus = new RedisStreamBus(config.REDIS_URL, config.REDIS_PREFIX);
  const streams = streamNames(config.REDIS_PREFIX, config.POSITION_SHARDS);
  const pool = createServicePool(config, 'worker', 4);
  let worker: GeofenceWorker | null = null;
  try {
    const { tenantId } = await seedBenchTenant(owner, 0);
    const rand = random(7);
    const fenceRows = makeFences(1_000, rand);
    await withTenant(owner, tenantId, (db) => db.query(
      `insert into geofences (tenant_id, name, kind, geometry) select $1, n, 'zone', g from unnest($2::text[], $3::jsonb[]) as f (n, g)`,
      [tenantId, fenceRows.map((f) => f.name), fenceRows.map((f) => JSON.stringify(f.geometry))],
    ));

    // Entries of 100 fixes per shard, as ingest's batches would be.
    const fixes = makeFixes(totalFixes, fenceRows, rand, 5_000, tenantId);
    const perShard = new Map<number, PositionRecord[]>();
    for (const fix of fixes) {
      const shard = streams.shardOf(shardKey(fix.asset_id, fix.device_id));
      let list = perShard.get(shard);
      if (!list) perShard.set(shard, (list = []));
      list.push(fix);
    }
    for (const [shard, records] of perShard) {
      const entries = [];
      for (let i = 0; i < records.length; i += 100) entries.push(...recordEntries(streams.positionShard(shard), records.slice(i, i + 100).map(encodePosition)));
      for (let i = 0; i < entries.length; i += 500) await bus.append(entries.slice(i, i + 500), 10_000_000);
    }

    const start = performance.now();
    sampler.start();
    worker = new GeofenceWorker(config, createBackplane(config), pool, streams, createLogger('silent'), { batchSize: 50, blockMs: 200 });
    await worker.start();
    const group = 'geofence';
    for (;;) {
      let pending = 0;
      let lag = 0;
      for (const stream of streams.allPositionShards()) {
        const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
        const info = groups.map(toObject).find((g) => g.name === group);
        pending += Number(info?.pending ?? 1);
        lag += Number(info?.lag ?? 1);
      }
      if (pending === 0 && lag === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (performance.now() - start) / 1000;
    roles.push(...sampler.stop());
    const { rows } = await owner.query<{ n: number }>(`select count(*)::int as n from events`);
    return { fixes: totalFixes, fences: 1_000, seconds: Math.round(seconds * 100) / 100, fixes_per_s: Math.round(totalFixes / seconds), events: rows[0]!.n, read_batch_entries: 50, fixes_per_entry: 100 };
  } finally {
    await worker?.close();
    await pool.end();
    await bus.close();
    redis.disconnect();
    await bench.close();
  }
}

function deviceUuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

function toObject(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

export default async function geofenceBench(args: string[], context?: ScenarioContext): Promise<ScenarioResult> {
  const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const seconds = pick(option('seconds') === undefined ? context?.settings.durationS : Number(option('seconds')), context, 2, 0.5);
  console.log(`geofence evaluator core: one core, no I/O, ${VERTICES}-vertex polygons, ${seconds} s per cell`);
  const core = benchCore(seconds);
  const tables: BenchTable[] = [withRatios({
    title: `geofence evaluator core — one core, no I/O, ${VERTICES}-vertex polygons`,
    rows: core.flatMap((c) => [
      row(`indexed, ${c.fences.toLocaleString('en-US')} fences`, c.indexed_fixes_per_s, 'fixes/s', null, 0, {
        baseline: `naive turf loop, ${c.fences.toLocaleString('en-US')} fences`, note: `${c.transitions_per_1k_fixes} transitions per 1k fixes`,
      }),
      row(`naive turf loop, ${c.fences.toLocaleString('en-US')} fences`, c.naive_fixes_per_s, 'fixes/s', null),
    ]),
  })];
  const roles: RoleUsage[] = [];
  let endToEnd = null;
  if (!args.includes('--no-e2e')) {
    const total = Number(option('e2e-fixes') ?? (context?.settings.quick ? 50_000 : 200_000));
    console.log(`geofence role end to end: ${total} fixes XREADGROUP → evaluate → events → state → XACK, 1,000 fences`);
    // The worker runs in this process: its CPU and memory are the bench process's.
    endToEnd = await benchEndToEnd(total, new RoleSampler([{ role: 'geofence worker (bench process)', pid: process.pid }]), roles);
    const indexed1k = core.find((c) => c.fences === 1_000);
    tables.push(withRatios({
      title: 'geofence role end to end — XREADGROUP → evaluate → events → state → XACK, 1,000 fences',
      rows: [
        row('geofence worker, 1,000 fences', endToEnd.fixes_per_s, 'fixes/s', null, 0, {
          ...(indexed1k ? { baseline: 'evaluator core alone, 1,000 fences' } : {}), note: `${endToEnd.events} events`,
        }),
        ...(indexed1k ? [row('evaluator core alone, 1,000 fences', indexed1k.indexed_fixes_per_s, 'fixes/s', null)] : []),
      ],
    }));
  }
  return {
    scenario: 'geofence', settings: { seconds, vertices: VERTICES }, tables, roles,
    targets: endToEnd ? [target('geofence role end to end, 1,000 fences (design aim)', endToEnd.fixes_per_s, 250_000, 'at-least', 'fixes/s')] : [],
    detail: { core, end_to_end: endToEnd },
  };
}
