/**
 * `npm run bench -- ingest [--embedded] [--devices 1000] [--window 4] [--seconds 8] [--generators 2] [--processes N] [--copy-format text|binary] [--phases mosquitto,aedes,single,batch,copy]`
 *
 * 1,000 simulated devices publish GPS fixes over MQTT QoS 1 from lean generator processes (raw sockets,
 * pre-built packets) to the ingest role running in its own process; every PUBACK means a committed row.
 * Prints fixes/s committed and publish→PUBACK latency p50/p99 for single-fix messages and 20-fix batches, and
 * in the same run the baselines: the same load against the local Mosquitto (127.0.0.1:1883, stores nothing)
 * and a raw `COPY` of rows of the same shape into the same indexed table; also a bare aedes (acknowledges at once,
 * stores nothing), the ceiling of any aedes-based ingest here. Results go to bench/results/.
 * `--embedded` runs the ingest role on the embedded defaults (PGlite, in-process bus) instead: single and batch phases only.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { openEmbeddedDatabase } from '../services/shared/database.js';
import { createLogger } from '../services/shared/log.js';
import { createBenchDatabase, seedBenchTenant, startBenchServer, stopBenchServer } from './lib/bench-env.js';
import { Histogram } from './lib/histogram.js';
import { positionsCopyBinary } from '../services/ingest/copy-binary.js';
import { PositionColumns } from '../ingest/rows.js';
import type { LoadDevice, LoadResult, LoadStart } from './lib/mqtt-load.js';

const here = dirname(fileURLToPath(import.meta.url));
const TSX = ['--import', 'tsx'];

/** What a bench server script sends once it listens. */
interface ServerReady {
  mqttPort: number;
  realtimePort?: number;
}

interface PhaseResult {
  name: string;
  target: string;
  fixesPerMessage: number;
  messagesPerS: number;
  fixesPerS: number;
  p50Ms: number;
  p99Ms: number;
  acked: number;
  sent: number;
  unacked: number;
  storedFixes?: number;
  serverCpuPct?: number;
  connectErrors: number;
  /** From the server's /metrics: commits during the phase, their mean duration and size. */
  commits?: { count: number; meanMs: number; meanRows: number; backpressurePauses: number };
}

export default async function ingestBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      devices: { type: 'string', default: '1000' },
      window: { type: 'string', default: '4' },
      seconds: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '2' },
      generators: { type: 'string', default: '2' },
      phases: { type: 'string', default: 'mosquitto,aedes,single,batch,copy' },
      'copy-rows': { type: 'string', default: '400000' },
      // The raw COPY baseline's format; the ingest itself writes binary COPY (services/ingest/copy-binary.ts).
      'copy-format': { type: 'string', default: 'text' },
      'batch-ms': { type: 'string' },
      'batch-rows': { type: 'string' },
      // One ingest process per core (INGEST_PROCESSES): the deployment this 2-core machine calls for.
      processes: { type: 'string', default: String(Math.min(2, cpus().length)) },
      mosquitto: { type: 'string', default: '127.0.0.1:1883' },
      // The ingest role on the embedded defaults (no DATABASE_URL, no REDIS_URL): single and batch phases only.
      embedded: { type: 'boolean', default: false },
    },
  });
  const deviceCount = Number(values.devices);
  const phases = values.phases!.split(',');
  const load = { window: Number(values.window), durationMs: Number(values.seconds) * 1000, warmupMs: Number(values.warmup) * 1000, generators: Number(values.generators) };
  if (values.embedded) {
    await embeddedIngestBench(deviceCount, load, {
      ...(values['batch-ms'] ? { INGEST_BATCH_MAX_MS: values['batch-ms'] } : {}),
      ...(values['batch-rows'] ? { INGEST_BATCH_MAX_ROWS: values['batch-rows'] } : {}),
    });
    return;
  }

  const bench = await createBenchDatabase({
    MQTT_PORT: '0',
    REALTIME_PORT: '0',
    STREAM_MAXLEN: '1000',
    ...(values['batch-ms'] ? { INGEST_BATCH_MAX_MS: values['batch-ms'] } : {}),
    ...(values['batch-rows'] ? { INGEST_BATCH_MAX_ROWS: values['batch-rows'] } : {}),
    INGEST_PROCESSES: values.processes!,
  });
  const { env, owner } = bench;
  console.log(`ingest bench: ${deviceCount} devices, window ${load.window}/connection, ${load.generators} generator processes, ${values.seconds}s per phase, `
    + `INGEST_PROCESSES=${values.processes} (${cpus().length} cores)`);
  let server: ChildProcess | null = null;
  const results: PhaseResult[] = [];
  let copyRowsPerS: number | null = null;
  try {
    const { tenantId, devices } = await seedBenchTenant(owner, deviceCount);
    const phaseTs = (i: number) => Date.now() - 20 * 3600_000 + i * 3600_000; // a separate hour per phase: no overlaps
    let phaseIndex = 0;
    if (phases.includes('mosquitto')) {
      const [host, port] = values.mosquitto!.split(':');
      results.push(await runPhase('mosquitto single-fix', `mosquitto ${values.mosquitto}`, host!, Number(port), devices, 1, phaseTs(phaseIndex++), load));
    }
    if (phases.includes('aedes')) {
      const bare = await startBenchServer<ServerReady>('lib/bare-aedes.ts', env);
      results.push(await runPhase('bare aedes single-fix', 'bare aedes', '127.0.0.1', bare.ready.mqttPort, devices, 1, phaseTs(phaseIndex++), load, bare.child.pid));
      await stopBenchServer(bare.child);
    }
    if (phases.includes('single') || phases.includes('batch')) {
      const { child, ready: started } = await startBenchServer<ServerReady>('lib/platform-server.ts', { ...env, BENCH_ROLES: 'ingest' });
      server = child;
      for (const [name, fixes] of [['single', 1], ['batch', 20]] as const) {
        if (!phases.includes(name)) continue;
        const tsBase = phaseTs(phaseIndex++);
        const before = await commitStats(started.realtimePort!);
        const result = await runPhase(`fieldops ${fixes === 1 ? 'single-fix' : '20-fix batches'}`, 'fieldops ingest', '127.0.0.1', started.mqttPort, devices, fixes, tsBase, load, child.pid);
        result.storedFixes = await countStored(owner, tsBase, tsBase + 3600_000);
        const after = await commitStats(started.realtimePort!);
        const count = after.count - before.count;
        result.commits = {
          count,
          meanMs: round2(((after.sum - before.sum) / Math.max(1, count)) * 1000),
          meanRows: Math.round((after.rows - before.rows) / Math.max(1, count)),
          backpressurePauses: after.pauses - before.pauses,
        };
        results.push(result);
      }
    }
    if (phases.includes('copy')) {
      copyRowsPerS = await copyBaseline(owner, tenantId, devices, Number(values['copy-rows']), phaseTs(phaseIndex++), values['copy-format'] === 'binary');
    }
  } finally {
    if (server) await stopBenchServer(server);
    await bench.close();
  }
  report(results, copyRowsPerS, { devices: deviceCount, processes: Number(values.processes), ...load });
}

/**
 * The ingest role on the embedded defaults, in its own process: PGlite behind its socket, the in-process bus.
 * The server creates and migrates the database; the bench then attaches to its socket (as `fieldops tenant`
 * does) to seed the devices and to count what was stored. Baselines (Mosquitto, COPY) belong to the server path.
 */
async function embeddedIngestBench(deviceCount: number, load: { window: number; durationMs: number; warmupMs: number; generators: number },
  overrides: Record<string, string>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fieldops-bench-embedded-'));
  // Empty means unset (config.ts): the embedded database and the in-process bus, whatever the shell exports.
  const env = {
    DATABASE_URL: '', REDIS_URL: '', DATA_DIR: dataDir, HOST: '127.0.0.1', LOG_LEVEL: 'error', MQTT_PORT: '0', REALTIME_PORT: '0',
    FIELDOPS_DEMO: '0', STREAM_MAXLEN: '1000', INGEST_PROCESSES: '1', ...overrides,
  };
  console.log(`ingest bench (embedded defaults): ${deviceCount} devices, window ${load.window}/connection, ${load.generators} generator processes, `
    + `${load.durationMs / 1000}s per phase (${cpus().length} cores)`);
  const results: PhaseResult[] = [];
  const { child, ready } = await startBenchServer<ServerReady>('lib/platform-server.ts', { ...env, BENCH_ROLES: 'ingest' });
  const database = await openEmbeddedDatabase(dataDir, createLogger('error'), { attach: true });
  const owner = database.ownerPool(2);
  try {
    const { devices } = await seedBenchTenant(owner, deviceCount);
    let phaseIndex = 0;
    for (const fixes of [1, 20]) {
      const tsBase = Date.now() - 20 * 3600_000 + phaseIndex++ * 3600_000;
      const before = await commitStats(ready.realtimePort!);
      const result = await runPhase(`embedded ${fixes === 1 ? 'single-fix' : '20-fix batches'}`, 'fieldops ingest (embedded)', '127.0.0.1', ready.mqttPort, devices, fixes, tsBase, load, child.pid);
      result.storedFixes = await countStored(owner, tsBase, tsBase + 3600_000);
      const after = await commitStats(ready.realtimePort!);
      const count = after.count - before.count;
      result.commits = {
        count,
        meanMs: round2(((after.sum - before.sum) / Math.max(1, count)) * 1000),
        meanRows: Math.round((after.rows - before.rows) / Math.max(1, count)),
        backpressurePauses: after.pauses - before.pauses,
      };
      results.push(result);
    }
  } finally {
    await owner.end();
    await database.close();
    await stopBenchServer(child);
    rmSync(dataDir, { recursive: true, force: true });
  }
  report(results, null, { devices: deviceCount, processes: 1, embedded: 1, ...load });
}

async function runPhase(name: string, target: string, host: string, port: number, devices: LoadDevice[], fixesPerMessage: number,
  tsBase: number, load: { window: number; durationMs: number; warmupMs: number; generators: number }, serverPid?: number): Promise<PhaseResult> {
  process.stdout.write(`  ${name.padEnd(28)} `);
  const children = Array.from({ length: load.generators }, () =>
    fork(join(here, 'lib/mqtt-load.ts'), [], { execArgv: TSX, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const slices = children.map((_, g) => devices.filter((_, i) => i % load.generators === g));
  const connected = children.map((child) => new Promise<void>((resolve) => child.once('message', () => resolve())));
  children.forEach((child, g) => child.send({
    cmd: 'start', host, port, devices: slices[g]!, window: load.window, fixesPerMessage,
    tsBase, warmupMs: load.warmupMs, durationMs: load.durationMs,
  } satisfies LoadStart));
  await Promise.all(connected);
  const cpuBefore = serverPid ? processCpuTicks(serverPid) : NaN;
  const wallStart = performance.now();
  const results = await Promise.all(children.map((child) => new Promise<LoadResult>((resolve) => {
    child.once('message', (msg: LoadResult) => resolve(msg));
    child.send({ cmd: 'go' });
  })));
  // Server CPU over the whole run (warm-up and drain included), in % of one core.
  const serverCpuPct = serverPid ? Math.round((processCpuTicks(serverPid) - cpuBefore) / ((performance.now() - wallStart) / 1000)) : undefined;
  const histogram = new Histogram();
  for (const r of results) histogram.add(new Histogram(r.histogram));
  const measuredS = Math.max(...results.map((r) => r.measuredMs)) / 1000;
  const messages = results.reduce((n, r) => n + r.messages, 0);
  const fixes = results.reduce((n, r) => n + r.fixes, 0);
  const result: PhaseResult = {
    name, target, fixesPerMessage,
    messagesPerS: Math.round(messages / measuredS),
    fixesPerS: Math.round(fixes / measuredS),
    p50Ms: histogram.percentileMs(0.5),
    p99Ms: histogram.percentileMs(0.99),
    acked: results.reduce((n, r) => n + r.ackedTotal, 0),
    sent: results.reduce((n, r) => n + r.sentTotal, 0),
    unacked: results.reduce((n, r) => n + r.unacked, 0),
    connectErrors: results.reduce((n, r) => n + r.connectErrors, 0),
    ...(serverCpuPct !== undefined && Number.isFinite(serverCpuPct) ? { serverCpuPct } : {}),
  };
  console.log(`${fmt(result.messagesPerS)} msgs/s  ${fmt(result.fixesPerS)} fixes/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms`
    + (result.connectErrors ? `  (${result.connectErrors} connections refused)` : ''));
  return result;
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

/** Raw COPY of rows shaped like the 20-fix phase's into the same table, its indexes included: the storage floor. */
async function copyBaseline(owner: pg.Pool, tenantId: string, devices: LoadDevice[], rows: number, tsBase: number, binary: boolean): Promise<number> {
  process.stdout.write(`  ${`raw COPY (positions${binary ? ', binary' : ''})`.padEnd(28)} `);
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
        await pipeline(Readable.from([chunk]), db.query(copyFrom('copy positions (id, tenant_id, device_id, asset_id, ts, lat, lon, '
          + 'speed_mps, heading_deg, accuracy_m, altitude_m, battery_pct, seq) from stdin with (format binary)')));
      }
      await db.query('commit');
    } else {
      await pipeline(Readable.from(chunks), db.query(copyFrom(
        'copy positions (tenant_id, device_id, asset_id, ts, lat, lon, speed_mps, heading_deg, accuracy_m, altitude_m, battery_pct, seq) from stdin')));
    }
    const seconds = (performance.now() - started) / 1000;
    const perS = Math.round(rows / seconds);
    console.log(`${fmt(perS)} rows/s  (${fmt(rows)} rows in ${seconds.toFixed(2)} s, ${binary ? `${chunks.length} COPYs in one transaction` : 'one COPY'})`);
    return perS;
  } finally {
    db.release();
  }
}

function report(results: PhaseResult[], copyRowsPerS: number | null, params: Record<string, number>): void {
  const mosquitto = results.find((r) => r.target.startsWith('mosquitto'));
  const single = results.find((r) => r.name === 'fieldops single-fix');
  const batch = results.find((r) => r.name === 'fieldops 20-fix batches');
  const ratios: Record<string, number> = {};
  if (mosquitto && single) ratios.single_vs_mosquitto = round2(single.messagesPerS / mosquitto.messagesPerS);
  if (batch && copyRowsPerS) ratios.batch_vs_copy = round2(batch.fixesPerS / copyRowsPerS);
  console.log('');
  if (ratios.single_vs_mosquitto !== undefined) console.log(`  single-fix QoS 1 vs Mosquitto: ${ratios.single_vs_mosquitto}×  (floor 0.5×, goal 1.0×)`);
  if (ratios.batch_vs_copy !== undefined) console.log(`  20-fix batches vs raw COPY:    ${ratios.batch_vs_copy}×  (floor 0.7×, goal 0.8×)`);
  for (const r of results) {
    if (r.storedFixes !== undefined) {
      const expected = r.acked * r.fixesPerMessage;
      console.log(`  ${r.name}: ${fmt(expected)} fixes acknowledged, ${fmt(r.storedFixes)} stored, ${r.unacked} unacknowledged at the end, server CPU ${r.serverCpuPct}%`
        + (r.commits ? `; ${fmt(r.commits.count)} commits${params.processes! > 1 ? ' (first ingest process only)' : ''}, mean ${r.commits.meanRows} rows in ${r.commits.meanMs} ms, ${r.commits.backpressurePauses} backpressure pauses` : ''));
    }
  }
  const dir = join(here, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `ingest-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ scenario: 'ingest', at: new Date().toISOString(), cores: cpus().length, params, phases: results, copyRowsPerS, ratios }, null, 2)}\n`);
  console.log(`  results: ${file}`);
}

/** CPU ticks of a process and its children (the further ingest processes of INGEST_PROCESSES). */
function processCpuTicks(pid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      if (Number(entry) === pid || Number(fields[1]) === pid) ticks += Number(fields[11]) + Number(fields[12]); // utime + stime
    } catch {
      // gone meanwhile
    }
  }
  return ticks || NaN;
}

const fmt = (n: number) => n.toLocaleString('en-US');
const round2 = (n: number) => Math.round(n * 100) / 100;
