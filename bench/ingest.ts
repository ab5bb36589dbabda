/**
 * `npm run bench -- ingest [--devices 1000] [--duration 8s] [--embedded] [--window 4] [--generators 2] [--processes N]
 *   [--copy-format text|binary] [--copy-rows 400000] [--qos0-rate 50000] [--storm-devices 10000]
 *   [--phases mosquitto,aedes,single,batch,qos0,ws,http,copy,copy-key,storm]`
 *
 * 1,000 simulated devices publish GPS fixes from lean generator processes (raw sockets, pre-built packets) to the
 * ingest role running in its own process; every acknowledgement means a committed row. Phases:
 * - `single`, `batch`: MQTT QoS 1, one fix and 20 fixes per message, `window` messages in flight per connection:
 *   fixes/s committed and publish→PUBACK latency;
 * - `qos0`: MQTT QoS 0 single fixes at an offered rate (`--qos0-rate`): fixes/s stored (read back), the rest lost;
 * - `ws`, `http`: 20-fix GpsBatches over the WebSocket ingest (frame → ack after commit) and `POST /v1/ingest/gps`;
 * - `storm`: `--storm-devices` devices CONNECT at once: CONNACKs/s, CONNECT→CONNACK latency, memory per connection.
 * Baselines in the same run: the same load against the local Mosquitto (`--mosquitto`, stores nothing) and a bare
 * aedes (acknowledges at once: aedes's whole publish path, which ingest's telemetry route skips), and raw `COPY` of rows of the same shape into
 * the same table (`copy`) and into a table with only the uniqueness key (`copy-key`: the storage limit, and what our
 * indexes cost). `--embedded` runs the ingest role on the embedded defaults (PGlite, in-process bus): single and
 * batch phases only.
 */
import { type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { createBenchDatabase, seedBenchTenant, startBenchServer, stopBenchServer } from './lib/bench-env.js';
import { row, target, withRatios, type BenchRow, type RoleUsage, type ScenarioResult, type TargetCheck } from './lib/bench-result.js';
import { ask, child, sleep } from './lib/child-ipc.js';
import { Histogram, type LatencySummary } from './lib/histogram.js';
import { positionsCopyBinary } from '../services/ingest/copy-binary.js';
import { PositionColumns } from '../ingest/rows.js';
import type { LoadDevice, LoadResult, LoadStart } from './lib/mqtt-load.js';
import type { StormResult } from './lib/connect-storm.js';
import { PublishTemplate } from './lib/mqtt-wire.js';
import { startGenerators, stopGenerators, sum, windowOf } from './lib/path-load.js';
import type { PlatformReady } from './lib/platform-server.js';
import { startPlatformUnderTest } from './lib/platform-under-test.js';
import { mergeUsage, processRssMb, RoleSampler } from './lib/proc-stats.js';
import { pick, type ScenarioContext } from './lib/scenario.js';

interface Load {
  window: number;
  durationMs: number;
  warmupMs: number;
  generators: number;
}

interface PhaseResult {
  name: string;
  fixesPerMessage: number;
  fixesPerS: number;
  latency: LatencySummary | null;
  acked: number;
  unacked: number;
  /** Lost or refused: connections refused, messages answered `busy`, QoS 0 fixes never stored. */
  errors: number;
  storedFixes?: number;
  baseline?: string;
  note?: string;
  /** From the server's /metrics: commits during the phase, their mean duration and size. */
  commits?: { count: number; meanMs: number; meanRows: number; backpressurePauses: number };
}

const ALL_PHASES = 'mosquitto,aedes,single,batch,qos0,ws,http,copy,copy-key,storm';
const MOSQUITTO = 'mosquitto single-fix QoS 1';
const COPY_SAME = 'raw COPY into positions';
const COPY_KEY = 'raw COPY into a key-only table';
const BATCH = 'fieldops 20-fix batches QoS 1';

export default async function ingestBench(argv: string[], context?: ScenarioContext): Promise<ScenarioResult> {
  const { values } = parseArgs({
    args: argv,
    options: {
      window: { type: 'string', default: '4' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      generators: { type: 'string', default: '2' },
      phases: { type: 'string', default: ALL_PHASES },
      'copy-rows': { type: 'string' },
      // The raw COPY baselines' format; the ingest itself writes binary COPY (services/ingest/copy-binary.ts).
      'copy-format': { type: 'string', default: 'text' },
      'qos0-rate': { type: 'string' },
      'storm-devices': { type: 'string' },
      'batch-ms': { type: 'string' },
      'batch-rows': { type: 'string' },
      // One ingest process per core (INGEST_PROCESSES): the deployment this 2-core machine calls for.
      processes: { type: 'string', default: String(Math.min(2, cpus().length)) },
      mosquitto: { type: 'string', default: '127.0.0.1:1883' },
      // The ingest role on the embedded defaults (no DATABASE_URL, no REDIS_URL): single and batch phases only.
      embedded: { type: 'boolean', default: false },
    },
  });
  const quick = context?.settings.quick ?? false;
  const deviceCount = pick(context?.settings.devices, context, 1000, 1000);
  const seconds = pick(values.seconds ? Number(values.seconds) : context?.settings.durationS, context, 8, 2);
  const phases = values.phases!.split(',');
  const load: Load = { window: Number(values.window), durationMs: seconds * 1000, warmupMs: Number(values.warmup ?? (quick ? 1 : 2)) * 1000, generators: Number(values.generators) };
  const batchEnv = {
    ...(values['batch-ms'] ? { INGEST_BATCH_MAX_MS: values['batch-ms'] } : {}),
    ...(values['batch-rows'] ? { INGEST_BATCH_MAX_ROWS: values['batch-rows'] } : {}),
  };
  if (values.embedded) return embeddedIngestBench(deviceCount, load, batchEnv);

  const stormDevices = phases.includes('storm') ? Number(values['storm-devices'] ?? (quick ? 2000 : 10_000)) : 0;
  const bench = await createBenchDatabase({ MQTT_PORT: '0', REALTIME_PORT: '0', STREAM_MAXLEN: '1000', ...batchEnv, INGEST_PROCESSES: values.processes! });
  const { env, owner } = bench;
  console.log(`ingest bench: ${deviceCount} devices, window ${load.window}/connection, ${load.generators} generator processes, ${seconds}s per phase, `
    + `INGEST_PROCESSES=${values.processes} (${cpus().length} cores)`);
  let server: ChildProcess | null = null;
  const results: PhaseResult[] = [];
  const usage: RoleUsage[] = [];
  try {
    const { tenantId, devices: seeded } = await seedBenchTenant(owner, Math.max(deviceCount, stormDevices));
    const devices = seeded.slice(0, deviceCount);
    const phaseTs = (i: number) => Date.now() - 20 * 3600_000 + i * 3600_000; // a separate hour per phase: no overlaps
    let phaseIndex = 0;
    if (phases.includes('mosquitto')) {
      const [host, port] = values.mosquitto!.split(':');
      const generator = mqttGenerator(host!, Number(port), 1, phaseTs(phaseIndex++), load);
      results.push({ ...(await runPhase(MOSQUITTO, devices, 1, load, generator)).result, note: `${values.mosquitto}, stores nothing` });
    }
    if (phases.includes('aedes')) {
      const bare = await startBenchServer<{ mqttPort: number }>('lib/bare-aedes.ts', env);
      const phase = await runPhase('bare aedes single-fix QoS 1', devices, 1, load, mqttGenerator('127.0.0.1', bare.ready.mqttPort, 1, phaseTs(phaseIndex++), load),
        { role: 'bare aedes', pid: bare.child.pid! });
      results.push({ ...phase.result, baseline: MOSQUITTO, note: 'acknowledges at once, stores nothing' });
      usage.push(...phase.usage);
      await stopBenchServer(bare.child);
    }
    const serverPhases = ['single', 'batch', 'qos0', 'ws', 'http', 'storm'].filter((p) => phases.includes(p));
    if (serverPhases.length) {
      const { child: started, ready } = await startBenchServer<PlatformReady>('lib/platform-server.ts', { ...env, BENCH_ROLES: 'ingest' });
      server = started;
      const ingest = { role: 'ingest', pid: started.pid! };
      const mqttPort = ready.mqttPort!;
      const realtimePort = ready.realtimePort!;
      // The storm first, on a fresh process: its memory per connection is not lost in what the load phases left behind.
      if (phases.includes('storm')) {
        results.push(await stormPhase(seeded.slice(0, stormDevices), mqttPort, ingest));
      }
      for (const [name, fixes] of [['single', 1], ['batch', 20]] as const) {
        if (!phases.includes(name)) continue;
        const tsBase = phaseTs(phaseIndex++);
        const phase = await measureWithCommits(owner, realtimePort, tsBase, () =>
          runPhase(fixes === 1 ? 'fieldops single-fix QoS 1' : BATCH, devices, fixes, load, mqttGenerator('127.0.0.1', mqttPort, fixes, tsBase, load), ingest));
        results.push({ ...phase.result, baseline: fixes === 1 ? MOSQUITTO : COPY_SAME });
        usage.push(...phase.usage);
      }
      if (phases.includes('qos0')) {
        const phase = await qos0Phase(owner, devices, mqttPort, Number(values['qos0-rate'] ?? (quick ? 20_000 : 50_000)), load, ingest);
        results.push({ ...phase.result, baseline: MOSQUITTO });
        usage.push(...phase.usage);
      }
      if (phases.includes('ws')) {
        const tsBase = phaseTs(phaseIndex++);
        const phase = await measureWithCommits(owner, realtimePort, tsBase, () =>
          runPhase('fieldops WebSocket 20-fix frames', devices, 20, load, wsGenerator(`ws://127.0.0.1:${realtimePort}/v1/ingest`, tsBase, load), ingest));
        results.push({ ...phase.result, ...(phases.includes('batch') ? { baseline: BATCH } : {}) });
        usage.push(...phase.usage);
      }
      if (phases.includes('http')) {
        const tsBase = phaseTs(phaseIndex++);
        const phase = await httpPhase(owner, `http://127.0.0.1:${realtimePort}`, devices, tsBase, load, ingest);
        results.push({ ...phase.result, ...(phases.includes('batch') ? { baseline: BATCH } : {}) });
        usage.push(...phase.usage);
      }
    }
    if (phases.includes('copy')) {
      results.push(await copyBaseline(owner, 'positions', COPY_SAME, tenantId, devices, Number(values['copy-rows'] ?? (quick ? 100_000 : 400_000)), phaseTs(phaseIndex++), values['copy-format'] === 'binary'));
    }
    if (phases.includes('copy-key')) {
      await owner.query('create table bench_positions_key (like positions including defaults including identity, unique (device_id, ts))');
      results.push(await copyBaseline(owner, 'bench_positions_key', COPY_KEY, tenantId, devices, Number(values['copy-rows'] ?? (quick ? 100_000 : 400_000)), phaseTs(phaseIndex++), values['copy-format'] === 'binary'));
    }
  } finally {
    if (server) await stopBenchServer(server);
    await bench.close();
  }
  return report(results, mergeUsage(usage), { devices: deviceCount, processes: Number(values.processes), seconds, window: load.window, generators: load.generators });
}

/**
 * The ingest role on the embedded defaults, in its own process: PGlite behind its socket, the in-process bus.
 * The server creates and migrates the database; the bench then attaches to its socket (as `fieldops tenant`
 * does) to seed the devices and to count what was stored. Baselines (Mosquitto, COPY) belong to the server path.
 */
async function embeddedIngestBench(deviceCount: number, load: Load, overrides: Record<string, string>): Promise<ScenarioResult> {
  console.log(`ingest bench (embedded defaults): ${deviceCount} devices, window ${load.window}/connection, ${load.generators} generator processes, `
    + `${load.durationMs / 1000}s per phase (${cpus().length} cores)`);
  const results: PhaseResult[] = [];
  const usage: RoleUsage[] = [];
  const platform = await startPlatformUnderTest('embedded', null, { BENCH_ROLES: 'ingest', STREAM_MAXLEN: '1000', INGEST_PROCESSES: '1', ...overrides });
  try {
    const { devices } = await seedBenchTenant(platform.owner, deviceCount);
    let phaseIndex = 0;
    for (const fixes of [1, 20]) {
      const tsBase = Date.now() - 20 * 3600_000 + phaseIndex++ * 3600_000;
      const name = `embedded ${fixes === 1 ? 'single-fix' : '20-fix batches'} QoS 1`;
      const phase = await measureWithCommits(platform.owner, platform.realtimePort, tsBase, () =>
        runPhase(name, devices, fixes, load, mqttGenerator(platform.mqtt.host, platform.mqtt.port, fixes, tsBase, load), { role: 'ingest (embedded)', pid: platform.processes[0]!.pid }));
      results.push(phase.result);
      usage.push(...phase.usage);
    }
  } finally {
    await platform.close();
  }
  return report(results, mergeUsage(usage), { devices: deviceCount, processes: 1, embedded: 1, seconds: load.durationMs / 1000, window: load.window, generators: load.generators });
}

/** A generator script and what it is told to start with, given its slice of the devices. */
interface Generator {
  script: string;
  start(devices: LoadDevice[]): object;
}

function mqttGenerator(host: string, port: number, fixesPerMessage: number, tsBase: number, load: Load): Generator {
  return {
    script: 'lib/mqtt-load.ts',
    start: (devices) => ({ cmd: 'start', host, port, devices, window: load.window, fixesPerMessage, tsBase, warmupMs: load.warmupMs, durationMs: load.durationMs } satisfies LoadStart),
  };
}

function wsGenerator(url: string, tsBase: number, load: Load): Generator {
  return {
    script: 'lib/ws-ingest-load.ts',
    start: (devices) => ({ cmd: 'start', url, devices, window: load.window, fixesPerMessage: 20, tsBase, warmupMs: load.warmupMs, durationMs: load.durationMs }),
  };
}

/** A closed-loop phase: generator processes, each over its slice of the devices, `window` messages in flight per connection. */
async function runPhase(name: string, devices: LoadDevice[], fixesPerMessage: number, load: Load, generator: Generator,
  server?: { role: string; pid: number }): Promise<{ result: PhaseResult; usage: RoleUsage[] }> {
  process.stdout.write(`  ${name.padEnd(34)} `);
  const children = Array.from({ length: load.generators }, () => child(generator.script));
  const slices = children.map((_, g) => devices.filter((_, i) => i % load.generators === g));
  // Each generator answers `start` once connected, and `go` with its result.
  await Promise.all(children.map((c, g) => nextMessage(c, generator.start(slices[g]!))));
  const sampler = new RoleSampler(server ? [server] : []).start();
  const results = await Promise.all(children.map((c) => nextMessage<LoadResult>(c, { cmd: 'go' })));
  const usage = sampler.stop();
  const histogram = new Histogram();
  for (const r of results) histogram.add(new Histogram(r.histogram));
  const measuredS = Math.max(...results.map((r) => r.measuredMs)) / 1000;
  const total = (key: 'fixes' | 'ackedTotal' | 'unacked' | 'connectErrors' | 'refused') => sum(results.map((r) => r[key] ?? 0));
  const result: PhaseResult = {
    name, fixesPerMessage, fixesPerS: Math.round(total('fixes') / measuredS), latency: histogram.summary(),
    acked: total('ackedTotal'), unacked: total('unacked'), errors: total('connectErrors') + total('refused') + total('unacked'),
  };
  console.log(`${fmt(result.fixesPerS)} fixes/s  p50 ${result.latency!.p50Ms.toFixed(2)} ms  p99 ${result.latency!.p99Ms.toFixed(2)} ms`
    + (result.errors ? `  (${result.errors} refused or unacknowledged)` : ''));
  return { result, usage };
}

function nextMessage<T>(c: ChildProcess, message: object): Promise<T> {
  return new Promise((resolve, reject) => {
    c.once('message', (m: T) => resolve(m));
    c.once('exit', (code) => reject(new Error(`a generator exited (${code}) before answering`)));
    c.send(message);
  });
}

/** Runs a phase between two reads of the server's commit metrics, then counts what it stored. */
async function measureWithCommits(owner: pg.Pool, realtimePort: number, tsBase: number,
  run: () => Promise<{ result: PhaseResult; usage: RoleUsage[] }>): Promise<{ result: PhaseResult; usage: RoleUsage[] }> {
  const before = await commitStats(realtimePort);
  const phase = await run();
  const after = await commitStats(realtimePort);
  const count = after.count - before.count;
  phase.result.storedFixes = await countStored(owner, tsBase, tsBase + 3600_000);
  phase.result.commits = {
    count,
    meanMs: round2(((after.sum - before.sum) / Math.max(1, count)) * 1000),
    meanRows: Math.round((after.rows - before.rows) / Math.max(1, count)),
    backpressurePauses: after.pauses - before.pauses,
  };
  phase.result.note = `${fmt(phase.result.acked * phase.result.fixesPerMessage)} fixes acked, ${fmt(phase.result.storedFixes)} stored; `
    + `${fmt(count)} commits of ${phase.result.commits.meanRows} rows in ${phase.result.commits.meanMs} ms (first process)`;
  return phase;
}

/** QoS 0 single fixes at a fixed offered rate (bench/lib/mqtt-rate.ts, fixes stamped now): stored fixes/s, the rest lost. */
async function qos0Phase(owner: pg.Pool, devices: LoadDevice[], port: number, rate: number, load: Load, server: { role: string; pid: number }) {
  const name = `fieldops single-fix QoS 0 (${fmt(rate)}/s offered)`;
  process.stdout.write(`  ${name.padEnd(34)} `);
  const helpers: ChildProcess[] = [];
  const rateDevices = devices.map((d, i): typeof d & { inside: [number, number]; outside: [number, number] } => {
    const at: [number, number] = [40 + (i % 100) / 10, -3 - (i % 50) / 10];
    return { ...d, inside: at, outside: at };
  });
  try {
    const phaseStart = Date.now();
    const { children, connectErrors } = await startGenerators({ host: '127.0.0.1', port }, rateDevices, { rate, cycle: 1_000_000, generators: load.generators }, helpers, 0);
    for (const c of children) c.send({ cmd: 'go' });
    await sleep(load.warmupMs);
    await windowOf(children);
    const since = Date.now();
    const sampler = new RoleSampler([server]).start();
    await sleep(load.durationMs);
    const until = Date.now();
    const sent = sum((await stopGenerators(children)).map((r) => r.sent));
    await sleep(1000); // what was received is committed within milliseconds; let the last batch land
    const usage = sampler.stop();
    // Fixes are stamped with their send time: those of the measured interval, and those of the whole phase.
    const fixesPerS = Math.round((await countStored(owner, since, until)) / ((until - since) / 1000));
    const stored = await countStored(owner, phaseStart - 1000, Date.now() + 1000);
    console.log(`${fmt(fixesPerS)} fixes/s stored; ${fmt(stored)} of ${fmt(sent)} sent in the phase`);
    const result: PhaseResult = {
      name, fixesPerMessage: 1, fixesPerS, latency: null, acked: 0, unacked: 0, errors: Math.max(0, sent - stored) + connectErrors,
      note: `${fmt(stored)} of ${fmt(sent)} sent stored (QoS 0: no acknowledgement)`,
    };
    return { result, usage };
  } finally {
    for (const h of helpers) if (h.exitCode === null) h.kill();
  }
}

/** `POST /v1/ingest/gps` with 20-fix protobuf batches, the devices in turn, from autocannon (32 connections). */
async function httpPhase(owner: pg.Pool, base: string, devices: LoadDevice[], tsBase: number, load: Load, server: { role: string; pid: number }) {
  const name = 'fieldops HTTP 20-fix batches';
  process.stdout.write(`  ${name.padEnd(34)} `);
  const templates = devices.map((d, i) => ({ token: d.token, template: new PublishTemplate('-', 20, 40 + (i % 100) / 10, -3 - (i % 50) / 10, 0), nextTs: tsBase }));
  let next = 0;
  const body = () => {
    const device = templates[next++ % templates.length]!;
    const out = Buffer.allocUnsafe(device.template.length);
    device.template.writeTo(out, 0, 0, device.nextTs);
    device.nextTs += 20;
    return { path: `/v1/ingest/gps?token=${device.token}`, body: out.subarray(device.template.payloadOffset) };
  };
  const first = body();
  const options = {
    url: base + first.path, method: 'POST' as const, body: first.body, connections: 32,
    headers: { 'content-type': 'application/x-protobuf' },
    requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, ...body() }) }],
  };
  if (load.warmupMs > 0) await autocannon({ ...options, duration: load.warmupMs / 1000 });
  const sampler = new RoleSampler([server]).start();
  const r = await autocannon({ ...options, duration: load.durationMs / 1000 });
  const usage = sampler.stop();
  const stored = await countStored(owner, tsBase, tsBase + 3600_000);
  const fixesPerS = Math.round((r.requests.average - r.non2xx / (load.durationMs / 1000)) * 20);
  console.log(`${fmt(fixesPerS)} fixes/s  p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms`);
  const result: PhaseResult = {
    name, fixesPerMessage: 20, fixesPerS, latency: { p50Ms: r.latency.p50, p90Ms: r.latency.p90, p99Ms: r.latency.p99, maxMs: r.latency.max },
    acked: r.requests.total - r.non2xx, unacked: 0, errors: r.non2xx + r.errors, storedFixes: stored,
    note: `${fmt(stored)} fixes stored (warm-up included)`,
  };
  return { result, usage };
}

/** Every storm device CONNECTs at once, from the generator processes: CONNACKs/s, latency, and RSS per connection. */
async function stormPhase(devices: LoadDevice[], port: number, server: { role: string; pid: number }): Promise<PhaseResult> {
  const name = `connect storm: ${fmt(devices.length)} devices`;
  process.stdout.write(`  ${name.padEnd(34)} `);
  const generators = 2;
  const children = Array.from({ length: generators }, () => child('lib/connect-storm.ts'));
  try {
    const rssBefore = processRssMb(server.pid);
    const storms = await Promise.all(children.map((c, g) => ask<StormResult>(c, {
      cmd: 'start', host: '127.0.0.1', port, devices: devices.filter((_, i) => i % generators === g), concurrency: 250,
    }, 'storm')));
    await sleep(500);
    const rssAfter = processRssMb(server.pid);
    await Promise.all(children.map((c) => ask(c, { cmd: 'close' }, 'closed')));
    const histogram = new Histogram();
    for (const s of storms) histogram.add(new Histogram(s.histogram));
    const admitted = storms.reduce((n, s) => n + s.admitted, 0);
    const seconds = Math.max(...storms.map((s) => s.seconds));
    const perConnectionKb = admitted ? Math.round(((rssAfter - rssBefore) * 1024) / admitted) : NaN;
    console.log(`${fmt(Math.round(admitted / seconds))} CONNECTs/s, ${fmt(admitted)} admitted in ${seconds.toFixed(1)} s, ~${perConnectionKb} KB per connection`);
    return {
      name, fixesPerMessage: 0, fixesPerS: Math.round(admitted / seconds), latency: histogram.summary(), acked: admitted, unacked: 0,
      errors: storms.reduce((n, s) => n + s.refused, 0),
      note: `all admitted in ${seconds.toFixed(1)} s; ingest RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MB: ~${perConnectionKb} KB per connection`,
    };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill();
  }
}

async function commitStats(port: number): Promise<{ count: number; sum: number; rows: number; pauses: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (prefix: string) => {
    const line = text.split('\n').find((l) => l.startsWith(prefix));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  return {
    count: value('fieldops_ingest_commit_seconds_count'),
    sum: value('fieldops_ingest_commit_seconds_sum'),
    rows: value('fieldops_ingest_rows_committed_total'),
    pauses: value('fieldops_ingest_backpressure_total{transport="mqtt"}'),
  };
}

async function countStored(owner: pg.Pool, fromMs: number, toMs: number): Promise<number> {
  const { rows } = await owner.query<{ n: string }>(
    'select count(*) as n from positions where ts >= to_timestamp($1::float8 / 1000) and ts < to_timestamp($2::float8 / 1000)', [fromMs, toMs]);
  return Number(rows[0]!.n);
}

/**
 * Raw COPY of rows shaped like the 20-fix phase's into `table`: `positions` with its indexes and partitions (the
 * storage floor of our schema) or a plain table with only the uniqueness key (the storage limit).
 */
async function copyBaseline(owner: pg.Pool, table: string, name: string, tenantId: string, devices: LoadDevice[], rows: number, tsBase: number,
  binary: boolean): Promise<PhaseResult> {
  process.stdout.write(`  ${name.padEnd(34)} `);
  const chunks: (string | Buffer)[] = [];
  const perDevice = Math.ceil(rows / devices.length);
  let lines: string[] = [];
  let columns = new PositionColumns();
  const flushBinary = () => {
    // Ids far above the sequence's: explicit ids, as the ingest writes them.
    const ids = Array.from({ length: columns.length }, (_, i) => 4e15 + chunks.length * 10_000 + i);
    chunks.push(positionsCopyBinary(ids, columns));
    columns = new PositionColumns();
  };
  for (let k = 0; k < perDevice; k++) {
    for (let d = 0; d < devices.length && k * devices.length + d < rows; d++) {
      if (binary) {
        columns.push({ id: devices[d]!.id, tenantId, assetId: null, siteId: null },
          { tsMs: tsBase + k, lat: 40 + d / 1000, lon: -3 - k / 1e5, speedMps: 8.5, headingDeg: 270, accuracyM: 4, altitudeM: 120, batteryPct: 77, seq: k });
        if (columns.length === 10_000) flushBinary();
        continue;
      }
      const ts = new Date(tsBase + k).toISOString();
      lines.push(`${tenantId}\t${devices[d]!.id}\t\\N\t${ts}\t${40 + d / 1000}\t${-3 - k / 1e5}\t8.5\t270\t4\t120\t77\t${k}`);
      if (lines.length === 10_000) {
        chunks.push(`${lines.join('\n')}\n`);
        lines = [];
      }
    }
  }
  if (lines.length) chunks.push(`${lines.join('\n')}\n`);
  if (columns.length) flushBinary();
  const db = await owner.connect();
  try {
    const started = performance.now();
    if (binary) {
      // Each chunk is a whole binary COPY stream (header, rows, trailer): one COPY per chunk, in one transaction.
      await db.query('begin');
      for (const chunk of chunks) {
        await pipeline(Readable.from([chunk]), db.query(copyFrom(`copy ${table} (id, tenant_id, device_id, asset_id, ts, lat, lon, `
          + 'speed_mps, heading_deg, accuracy_m, altitude_m, battery_pct, seq) from stdin with (format binary)')));
      }
      await db.query('commit');
    } else {
      await pipeline(Readable.from(chunks), db.query(copyFrom(
        `copy ${table} (tenant_id, device_id, asset_id, ts, lat, lon, speed_mps, heading_deg, accuracy_m, altitude_m, battery_pct, seq) from stdin`)));
    }
    const seconds = (performance.now() - started) / 1000;
    const perS = Math.round(rows / seconds);
    const how = `${fmt(rows)} rows in ${seconds.toFixed(2)} s, ${binary ? `${chunks.length} binary COPYs in one transaction` : 'one text COPY'}`;
    console.log(`${fmt(perS)} rows/s  (${how})`);
    return { name, fixesPerMessage: 1, fixesPerS: perS, latency: null, acked: rows, unacked: 0, errors: 0, note: how };
  } finally {
    db.release();
  }
}

function report(results: PhaseResult[], roles: RoleUsage[], params: Record<string, number>): ScenarioResult {
  const present = new Set(results.map((r) => r.name));
  if (present.has(COPY_SAME) && present.has(COPY_KEY)) results.find((r) => r.name === COPY_SAME)!.baseline = COPY_KEY;
  const rows: BenchRow[] = results.map((r) => row(r.name, r.fixesPerS, r.fixesPerMessage === 0 ? 'CONNECTs/s' : 'fixes/s', r.latency, r.errors, {
    ...(r.baseline && present.has(r.baseline) ? { baseline: r.baseline } : {}), ...(r.note ? { note: r.note } : {}),
  }));
  const table = withRatios({
    title: `ingest — ${fmt(params.devices!)} devices, ${params.window} in flight per connection, ${params.seconds} s per phase, INGEST_PROCESSES=${params.processes}`
      + (params.embedded ? ' (embedded defaults)' : ''),
    rows,
  });
  const ratio = (name: string) => table.rows.find((r) => r.name === name)?.ratio ?? null;
  const storm = results.find((r) => r.fixesPerMessage === 0);
  const targets: TargetCheck[] = [
    target('single-fix QoS 1 vs Mosquitto', ratio('fieldops single-fix QoS 1'), 1.0, 'at-least', '×'),
    target('20-fix batches vs raw COPY into positions', ratio(BATCH), 0.8, 'at-least', '×'),
    ...(storm ? [target('connect storm admission (design: 10,000 devices in 10 s)', storm.fixesPerS, 1000, 'at-least', 'CONNECTs/s')] : []),
  ];
  return { scenario: 'ingest', settings: params, tables: [table], roles, targets: params.embedded ? [] : targets, detail: results };
}

const fmt = (n: number) => n.toLocaleString('en-US');
const round2 = (n: number) => Math.round(n * 100) / 100;
