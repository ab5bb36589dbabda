/**
 * `npm run bench -- soak [--duration 10m] [--rate 2000] [--devices 500] [--every 10s] [--shape one|split|embedded]`
 *
 * A fixed, moderate load for a set time — the e2e path (bench/e2e.ts: MQTT QoS 1 fixes driving in and out of
 * fences, events to a dispatcher's socket) on the one-process default on PostgreSQL and Redis unless `--shape split` or `--shape embedded` — reporting every few
 * seconds the committed fixes/s, publish→PUBACK latency, end-to-end p99 and each server process's RSS. At the end,
 * two verdicts: no leak (RSS of the last third of the run within 10% of the first third's) and no drift (PUBACK p99
 * of the last quarter's windows within 1.5× the first quarter's).
 */
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { parseDuration } from './lib/bench-args.js';
import { row, target, type BenchRow, type RoleUsage, type ScenarioResult } from './lib/bench-result.js';
import { ask, sleep } from './lib/child-ipc.js';
import { Histogram } from './lib/histogram.js';
import { openPath, stopGenerators, sum, windowOf, type PathLoad } from './lib/path-load.js';
import { startPlatformUnderTest, SHAPE_TITLES, type PlatformShape } from './lib/platform-under-test.js';
import { RoleSampler } from './lib/proc-stats.js';
import { pick, type ScenarioContext } from './lib/scenario.js';

interface Sample {
  atS: number;
  fixesPerS: number;
  p99Ms: number;
  endToEndP99Ms: number;
  rssMb: Record<string, number>;
}

const mean = (values: number[]) => (values.length ? sum(values) / values.length : NaN);
const median = (values: number[]) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)]! : NaN;
};

/** RSS growth (%) of all processes together from the first third of the samples to the last third. */
export function rssGrowthPct(samples: Sample[]): number | null {
  if (samples.length < 3) return null;
  const third = Math.floor(samples.length / 3);
  const total = (s: Sample) => sum(Object.values(s.rssMb));
  const first = mean(samples.slice(0, third).map(total));
  const last = mean(samples.slice(-third).map(total));
  return Number.isFinite(first) && first > 0 ? Math.round(((last - first) / first) * 1000) / 10 : null;
}

/** The last quarter's median window p99 over the first quarter's. */
export function p99Drift(samples: Sample[]): number | null {
  if (samples.length < 4) return null;
  const quarter = Math.floor(samples.length / 4);
  const ratio = median(samples.slice(-quarter).map((s) => s.p99Ms)) / median(samples.slice(0, quarter).map((s) => s.p99Ms));
  return Number.isFinite(ratio) ? Math.round(ratio * 100) / 100 : null;
}

export default async function soakBench(args: string[], context?: ScenarioContext): Promise<ScenarioResult> {
  const { values } = parseArgs({ args, options: { every: { type: 'string' }, shape: { type: 'string' } } });
  const settings = context?.settings;
  const targetHost = settings?.target ?? null;
  const shape = (values.shape ?? (targetHost ? 'target' : 'one')) as PlatformShape;
  const load: PathLoad = {
    rate: pick(settings?.rate, context, 2000, 2000),
    devices: pick(settings?.devices, context, 500, 200),
    seconds: pick(settings?.durationS, context, 600, 15),
    warmupS: 3, cycle: 20, fences: 100, generators: 1,
  };
  // At least five samples, whatever the duration, unless told otherwise.
  const everyS = values.every ? parseDuration(values.every) : Math.min(settings?.quick ? 3 : 10, Math.max(1, load.seconds / 5));
  console.log(`  soak on ${SHAPE_TITLES[shape]}: ${load.rate.toLocaleString('en-US')} fixes/s from ${load.devices} devices for ${load.seconds} s, a sample every ${everyS} s`);
  const platform = await startPlatformUnderTest(shape, targetHost);
  const helpers: ChildProcess[] = [];
  const samples: Sample[] = [];
  const windows: BenchRow[] = [];
  const whole = { puback: new Histogram(), endToEnd: new Histogram(), acked: 0, shed: 0, events: 0 };
  let unacked = 0;
  let connectErrors = 0;
  const sampler = new RoleSampler(platform.processes);
  let roles: RoleUsage[] = [];
  try {
    const path = await openPath(platform, load, helpers);
    connectErrors = path.connectErrors;
    for (const c of path.children) c.send({ cmd: 'go' });
    await sleep(load.warmupS * 1000);
    await windowOf(path.children);
    path.listener.send({ cmd: 'since', since: Date.now() });
    await ask(path.listener, { cmd: 'window' }, 'window');
    sampler.start();
    const started = performance.now();
    for (let at = everyS; at <= load.seconds + 1e-9; at += everyS) {
      await sleep(Math.max(0, started + at * 1000 - performance.now()));
      const w = await windowOf(path.children);
      const live = await ask<{ events: number; endToEnd: number[] }>(path.listener, { cmd: 'window' }, 'window');
      const liveHistogram = new Histogram(live.endToEnd);
      whole.puback.add(w.histogram);
      whole.endToEnd.add(liveHistogram);
      whole.acked += w.acked;
      whole.shed += w.shed;
      whole.events += live.events;
      const rssMb = sampler.sample();
      const sample: Sample = { atS: at, fixesPerS: w.acked / everyS, p99Ms: w.histogram.percentileMs(0.99), endToEndP99Ms: liveHistogram.percentileMs(0.99), rssMb };
      samples.push(sample);
      const rssText = Object.entries(rssMb).map(([role, mb]) => `${role} ${mb.toFixed(0)} MB`).join(', ');
      const note = `e2e p99 ${Number.isFinite(sample.endToEndP99Ms) ? sample.endToEndP99Ms.toFixed(0) : '–'} ms; ${rssText}`;
      windows.push(row(`${at} s`, sample.fixesPerS, 'fixes/s', w.histogram.summary(), w.shed, { note }));
      console.log(`  … ${at}/${load.seconds} s  ${Math.round(sample.fixesPerS).toLocaleString('en-US')} fixes/s  PUBACK p99 ${sample.p99Ms.toFixed(1)} ms  ${note}`);
    }
    roles = sampler.stop();
    unacked = sum((await stopGenerators(path.children)).map((r) => r.unacked));
  } finally {
    for (const h of helpers) if (h.exitCode === null) h.kill();
    await platform.close();
  }
  const growth = rssGrowthPct(samples);
  const drift = p99Drift(samples);
  return {
    scenario: 'soak',
    settings: { ...load, everyS, shape },
    tables: [
      { title: `soak — ${SHAPE_TITLES[shape]}: fix → commit (PUBACK) every ${everyS} s`, rows: windows },
      {
        title: `soak — the whole run (${load.seconds} s)`,
        rows: [
          row('fix → commit (PUBACK)', whole.acked / load.seconds, 'fixes/s', whole.puback.summary(), whole.shed + unacked + connectErrors),
          row('fix → dispatcher socket (end to end)', whole.events / load.seconds, 'events/s', whole.endToEnd.summary()),
        ],
      },
    ],
    roles,
    targets: [
      target('soak RSS growth, first third → last third', growth, 10, 'at-most', '%'),
      target('soak PUBACK p99 drift, last quarter ÷ first quarter', drift, 1.5, 'at-most', '×'),
    ],
    detail: { samples },
  };
}
