/**
 * `npm run bench -- storm [--devices 10000] [--quick] [--generators 2] [--processes 1] [--timeout 30]`
 *
 * A reconnect storm (docs/design.md, "Device contract"): every device opens its MQTT connection at the same
 * moment, as after a restart or a network cut, and publishes one QoS 1 fix once admitted. The ingest role runs
 * in its own process (`fieldops start --role ingest`, INGEST_PROCESSES as given), the generators in others.
 * Prints the time until every device was admitted and until every first fix was committed (PUBACK), and the
 * server's peak RSS. Results go to bench/results/. (bench/ingest.ts's `storm` phase times the CONNECTs alone,
 * with the connections held open, for memory per connection.)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createBenchDatabase, seedBenchTenant, startBenchServer, stopBenchServer } from './lib/bench-env.js';
import { reconnectStormInChild, type StormResult } from './lib/mqtt-storm.js';
import type { PlatformReady } from './lib/platform-server.js';
import { pick, type ScenarioContext } from './lib/scenario.js';

const here = dirname(fileURLToPath(import.meta.url));

export default async function stormBench(argv: string[], context?: ScenarioContext): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      devices: { type: 'string' },
      generators: { type: 'string', default: '2' },
      processes: { type: 'string', default: '1' },
      timeout: { type: 'string', default: '30' },
    },
  });
  const deviceCount = pick(values.devices ? Number(values.devices) : context?.settings.devices, context, 10_000, 2000);
  const generators = Number(values.generators);
  const bench = await createBenchDatabase({ MQTT_PORT: '0', REALTIME_PORT: '0', STREAM_MAXLEN: '1000', INGEST_PROCESSES: values.processes! });
  try {
    const tenant = await seedBenchTenant(bench.owner, deviceCount);
    const server = await startBenchServer<PlatformReady>('lib/platform-server.ts', { ...bench.env, BENCH_ROLES: 'ingest' });
    let peakRssMb = 0;
    const sampler = setInterval(() => { peakRssMb = Math.max(peakRssMb, rssMb(server.child.pid!)); }, 50);
    const idleRssMb = rssMb(server.child.pid!);
    console.log(`storm bench: ${deviceCount} devices from ${generators} generator processes against the ingest role `
      + `(INGEST_PROCESSES=${values.processes}, ${cpus().length} cores), server RSS before ${idleRssMb.toFixed(0)} MB`);
    const tsMs = Date.now() - 1000;
    const shares = Array.from({ length: generators }, (_, g) => tenant.devices.filter((_, i) => i % generators === g));
    const parts = await Promise.all(shares.map((devices) => reconnectStormInChild({
      host: '127.0.0.1', port: server.ready.mqttPort!, devices, tsMs, timeoutMs: Number(values.timeout) * 1000,
    })));
    clearInterval(sampler);
    peakRssMb = Math.max(peakRssMb, rssMb(server.child.pid!));
    const result = combine(parts);
    const { rows } = await bench.owner.query<{ n: string }>('select count(*) as n from positions where tenant_id = $1', [tenant.tenantId]);
    await stopBenchServer(server.child);
    const summary = { ...result, storedFixes: Number(rows[0]!.n), serverPeakRssMb: Math.round(peakRssMb), serverIdleRssMb: Math.round(idleRssMb) };
    console.table([{
      devices: deviceCount, admitted: result.admitted, publishing: result.publishing, failed: result.failed,
      'all admitted (s)': (result.admittedMs / 1000).toFixed(2), 'all publishing (s)': (result.publishingMs / 1000).toFixed(2),
      'admitted p50/p99 (s)': result.percentilesMs.admitted.map((ms) => (ms / 1000).toFixed(2)).join(' / '),
      'stored fixes': summary.storedFixes, 'server peak RSS (MB)': summary.serverPeakRssMb,
    }]);
    const dir = join(here, 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `storm-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ scenario: 'storm', at: new Date().toISOString(), cores: cpus().length, params: values, result: summary }, null, 2)}\n`);
    console.log(`results: ${file}`);
  } finally {
    await bench.close();
  }
}

/** The generators' results as one storm (times: the slowest generator's). */
function combine(parts: StormResult[]): StormResult {
  const refused: Record<number, number> = {};
  for (const part of parts) for (const [code, n] of Object.entries(part.refused)) refused[Number(code)] = (refused[Number(code)] ?? 0) + n;
  const max = (pick: (p: StormResult) => [number, number]): [number, number] =>
    [Math.max(...parts.map((p) => pick(p)[0])), Math.max(...parts.map((p) => pick(p)[1]))];
  return {
    devices: parts.reduce((n, p) => n + p.devices, 0),
    admitted: parts.reduce((n, p) => n + p.admitted, 0),
    publishing: parts.reduce((n, p) => n + p.publishing, 0),
    failed: parts.reduce((n, p) => n + p.failed, 0),
    refused,
    admittedMs: Math.max(...parts.map((p) => p.admittedMs)),
    publishingMs: Math.max(...parts.map((p) => p.publishingMs)),
    percentilesMs: { connected: max((p) => p.percentilesMs.connected), admitted: max((p) => p.percentilesMs.admitted), publishing: max((p) => p.percentilesMs.publishing) },
  };
}

/** Resident memory of a process, from /proc (Linux). */
function rssMb(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}
