/**
 * `npm run bench -- e2e [--rate 10000] [--devices 1000] [--duration 20s] [--shapes split,one,embedded] [--cycle 20] [--fences 100] [--warmup 2]
 *   [--generators 2]`
 *
 * The whole path at a fixed offered rate: devices publish single-fix QoS 1 messages over MQTT (lean generator
 * processes, bench/lib/mqtt-rate.ts), each fix stamped with its send time, each device driving in and out of a
 * fence (`cycle` fixes inside, then `cycle` outside), so the geofence role writes entered/exited events that the
 * outbox relay appends to `events:{tenant}` and the realtime role pushes to a dispatcher's live socket (and the
 * webhooks role to a receiver, where it exists: bench/lib/e2e-hops.ts). Latency per hop, from the fix's own time:
 *   fix → commit (PUBACK) · fix → event row (geofence evaluated and committed: the row's recorded_at) ·
 *   event row → events stream (the stream id's time) · events stream → dispatcher socket · fix → socket, end to end.
 * Run against every role as a separate process (`split`) and against the one-process default (`one`), on
 * PostgreSQL and Redis, and against the one process on the embedded defaults (`embedded`: PGlite, in-process bus);
 * or against a running platform with `--target HOST`. Target: end-to-end p99 ≤ 100 ms.
 */
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { withTenant } from '../services/shared/db.js';
import { row, target, type BenchRow, type BenchTable, type RoleUsage, type ScenarioResult, type TargetCheck } from './lib/bench-result.js';
import { ask, sleep } from './lib/child-ipc.js';
import { EVENT_HOPS, type EventHop } from './lib/e2e-hops.js';
import { Histogram } from './lib/histogram.js';
import type { LiveHops } from './lib/live-listener.js';
import { EVENT_TYPES, openPath, stopGenerators, sum, windowOf, type PathLoad } from './lib/path-load.js';
import { startPlatformUnderTest, SHAPE_TITLES, type PlatformShape, type PlatformUnderTest } from './lib/platform-under-test.js';
import { RoleSampler } from './lib/proc-stats.js';
import { showProgress } from './lib/progress.js';
import { pick, type ScenarioContext } from './lib/scenario.js';

/** Hops read back from the events table: fix → row committed, row → stream id. */
async function eventRowHops(platform: PlatformUnderTest, tenantId: string, fromMs: number, toMs: number) {
  const rows = await withTenant(platform.owner, tenantId, async (db) => (await db.query<{ to_row: number; to_stream: number | null }>(
    `select extract(epoch from (recorded_at - occurred_at)) * 1000 as to_row,
            split_part(stream_id, '-', 1)::float8 - extract(epoch from recorded_at) * 1000 as to_stream
       from events where tenant_id = $1 and occurred_at >= to_timestamp($2::float8 / 1000) and occurred_at < to_timestamp($3::float8 / 1000)`,
    [tenantId, fromMs, toMs])).rows);
  return {
    events: rows.length,
    unpublished: rows.filter((r) => r.to_stream === null).length,
    toRow: Histogram.ofMs(rows.map((r) => Number(r.to_row))),
    toStream: Histogram.ofMs(rows.filter((r) => r.to_stream !== null).map((r) => Math.max(0, Number(r.to_stream)))),
  };
}

async function runShape(shape: PlatformShape, targetHost: string | null, load: PathLoad): Promise<{ table: BenchTable; roles: RoleUsage[]; check: TargetCheck; detail: unknown }> {
  console.log(`  ${SHAPE_TITLES[shape]}: starting…`);
  const platform = await startPlatformUnderTest(shape, targetHost);
  const helpers: ChildProcess[] = [];
  const hops: EventHop[] = [];
  try {
    const { tenantId, jwt, listener, children, connectErrors } = await openPath(platform, load, helpers);
    for (const make of EVENT_HOPS) {
      const hop = make();
      if (!hop.available(shape)) continue;
      hops.push(hop);
      if (!(await hop.setup(platform.apiUrl, jwt, EVENT_TYPES))) await hops.pop()!.close();
    }
    const sampler = new RoleSampler(platform.processes);
    for (const c of children) c.send({ cmd: 'go' });
    await sleep(load.warmupS * 1000);
    await windowOf(children); // the warm-up's acknowledgements: not measured
    for (const c of children) c.send({ cmd: 'measure', on: true });
    const since = Date.now();
    for (const hop of hops) hop.since(since);
    sampler.start();
    const stopProgress = showProgress(`${shape}: ${load.rate.toLocaleString('en-US')} fixes/s offered`, load.seconds,
      () => platform.processes.map((p) => `${p.role} ${sampler.sample()[p.role]?.toFixed(0)} MB`).join(', '));
    await sleep(load.seconds * 1000);
    stopProgress();
    // Throughput: acknowledgements within the interval; latency: of the messages sent in it, whenever acknowledged.
    const measured = await windowOf(children);
    for (const c of children) c.send({ cmd: 'measure', on: false });
    const until = Date.now();
    const results = await stopGenerators(children);
    const pubackLatency = new Histogram();
    for (const r of results) pubackLatency.add(new Histogram(r.measured));
    const roles = sampler.stop();
    // The interval's events are still on their way (a server that fell behind is seconds late): count once every hop
    // has all of them, or once nothing has arrived anywhere for five seconds, or after 30 s.
    let live: LiveHops;
    let fromRows: Awaited<ReturnType<typeof eventRowHops>>;
    let arrivals: { count: number; histogram: Histogram; seen: number }[];
    let last = '';
    let still = 0;
    const settleBy = Date.now() + 30_000;
    for (;;) {
      live = await ask<LiveHops>(listener, { cmd: 'collect', from: since, to: until }, 'collected');
      fromRows = await eventRowHops(platform, tenantId, since, until);
      arrivals = await Promise.all(hops.map((hop) => hop.collect()));
      const counts = [fromRows.events, fromRows.unpublished, live.events, ...arrivals.map((a) => a.seen)];
      const complete = fromRows.unpublished === 0 && live.events >= fromRows.events && arrivals.every((a) => a.count >= fromRows.events);
      still = counts.join() === last ? still + 1 : 0;
      last = counts.join();
      if ((complete && fromRows.events > 0) || still >= 5 || Date.now() > settleBy) break;
      await sleep(1000);
    }
    const measuredS = (until - since) / 1000;
    const endToEnd = new Histogram(live.endToEnd);
    const rows: BenchRow[] = [
      row('fix → commit (PUBACK)', measured.acked / measuredS, 'fixes/s', pubackLatency.summary(),
        measured.shed + sum(results.map((r) => r.unacked)) + connectErrors),
      row('fix → geofence event row', fromRows.events / measuredS, 'events/s', fromRows.toRow.summary()),
      row('event row → events stream', (fromRows.events - fromRows.unpublished) / measuredS, 'events/s', fromRows.toStream.summary(), fromRows.unpublished),
      row('events stream → dispatcher socket', live.events / measuredS, 'events/s', new Histogram(live.streamToSocket).summary()),
      row('fix → dispatcher socket (end to end)', live.events / measuredS, 'events/s', endToEnd.summary(), Math.max(0, fromRows.events - live.events)),
    ];
    hops.forEach((hop, i) => {
      const { count, histogram } = arrivals[i]!;
      rows.push(row(hop.name, count / measuredS, 'events/s', histogram.summary(), Math.max(0, fromRows.events - count)));
    });
    const title = `e2e — ${SHAPE_TITLES[shape]}: ${load.rate.toLocaleString('en-US')} fixes/s offered by ${load.devices.toLocaleString('en-US')} devices, ${load.seconds} s`;
    return {
      table: { title, rows },
      roles: roles.map((r) => ({ ...r, role: shape === 'split' ? r.role : `${r.role} (${shape})` })),
      check: target(`e2e p99, ${SHAPE_TITLES[shape]}`, live.events > 0 ? endToEnd.percentileMs(0.99) : null, 100, 'at-most', 'ms'),
      detail: { shape, offered: load.rate, sent: measured.sent, acked: measured.acked, shed: measured.shed, connectErrors, events: fromRows.events, received: live.events, ignored: live.ignored },
    };
  } finally {
    for (const hop of hops) await hop.close();
    for (const h of helpers) if (h.exitCode === null) h.kill();
    await platform.close();
  }
}

export default async function e2eBench(args: string[], context?: ScenarioContext): Promise<ScenarioResult> {
  const { values } = parseArgs({
    args,
    options: {
      shapes: { type: 'string' },
      cycle: { type: 'string', default: '20' },
      fences: { type: 'string', default: '100' },
      warmup: { type: 'string' },
      generators: { type: 'string', default: '2' },
    },
  });
  const settings = context?.settings;
  const targetHost = settings?.target ?? null;
  const shapes = (values.shapes ?? (targetHost ? 'target' : 'split,one,embedded')).split(',') as PlatformShape[];
  const load: PathLoad = {
    rate: pick(settings?.rate, context, 10_000, 10_000),
    devices: pick(settings?.devices, context, 1000, 1000),
    seconds: pick(settings?.durationS, context, 20, 5),
    warmupS: Number(values.warmup ?? (settings?.quick ? 2 : 3)),
    cycle: Number(values.cycle),
    fences: Number(values.fences),
    generators: Number(values.generators),
  };
  const tables: BenchTable[] = [];
  const roles: RoleUsage[] = [];
  const targets: TargetCheck[] = [];
  const detail: unknown[] = [];
  for (const shape of shapes) {
    const result = await runShape(shape, targetHost, load);
    tables.push(result.table);
    roles.push(...result.roles);
    targets.push(result.check);
    detail.push(result.detail);
  }
  return { scenario: 'e2e', settings: { ...load, shapes }, tables, roles, targets, detail };
}
