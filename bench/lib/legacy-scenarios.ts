/**
 * Scenarios that print their own report and write their own JSON (bench/webhooks.ts, of the webhooks issue) take
 * their own options, not the runner's context. Here each one's registration: the runner's settings in its options
 * (`--quick` as short ones), and its JSON read back into the runner's tables, so that its figures stand in the
 * run's result beside the others'. A scenario that returns its tables needs no entry.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchSettings } from './bench-args.js';
import { row, target, withRatios, type ScenarioResult } from './bench-result.js';

interface Legacy {
  args(settings: BenchSettings): string[];
  toResult(json: Record<string, unknown>): Omit<ScenarioResult, 'scenario'>;
}

interface WebhooksJson {
  seconds: number;
  endpoints: number;
  concurrency: number;
  backlog: number;
  bareReqPerS: number;
  drain: { deliveries: number; expected: number; perS: number };
  steady: { offeredPerS: number; deliveries: number; expected: number; p50Ms: number; p99Ms: number };
}

interface StormJson {
  result: {
    devices: number;
    admitted: number;
    publishing: number;
    failed: number;
    admittedMs: number;
    publishingMs: number;
    percentilesMs: { admitted: [number, number]; publishing: [number, number] };
    storedFixes: number;
    serverPeakRssMb: number;
    serverIdleRssMb: number;
  };
}

const LEGACY: Record<string, Legacy> = {
  storm: {
    args: () => [],
    toResult: (raw) => {
      const r = (raw as unknown as StormJson).result;
      const devices = r.devices.toLocaleString('en-US');
      return {
        settings: { devices: r.devices },
        tables: [{
          title: `reconnect storm — ${devices} devices connecting at once, each publishing one QoS 1 fix once admitted`,
          rows: [
            row('every device admitted (CONNACK)', r.admitted / (r.admittedMs / 1000), 'CONNECTs/s', { p50Ms: r.percentilesMs.admitted[0], p99Ms: r.percentilesMs.admitted[1], maxMs: r.admittedMs },
              r.devices - r.admitted, { note: `all in ${(r.admittedMs / 1000).toFixed(1)} s` }),
            row('every first fix committed (PUBACK)', r.publishing / (r.publishingMs / 1000), 'fixes/s', { p50Ms: r.percentilesMs.publishing[0], p99Ms: r.percentilesMs.publishing[1], maxMs: r.publishingMs },
              r.failed, { note: `${r.storedFixes.toLocaleString('en-US')} fixes stored` }),
          ],
        }],
        roles: [{ role: 'ingest', cpuPct: null, rssMb: r.serverPeakRssMb }],
        targets: [target(`reconnect storm: ${devices} devices all admitted (design: 10,000 within 10 s)`, Math.round(r.admittedMs / 100) / 10, 10, 'at-most', 's')],
      };
    },
  },
  webhooks: {
    args: (s) => [
      ...(s.durationS ? ['--seconds', String(s.durationS)] : s.quick ? ['--seconds', '2'] : []),
      ...(s.rate ? ['--rate', String(s.rate)] : []),
      ...(s.quick ? ['--backlog', '4000'] : []),
    ],
    toResult: (raw) => {
      const j = raw as unknown as WebhooksJson;
      return {
        settings: { seconds: j.seconds, endpoints: j.endpoints, concurrency: j.concurrency, backlog: j.backlog },
        tables: [withRatios({
          title: `webhooks — ${j.endpoints} endpoints, ${j.concurrency} deliveries in flight, a backlog of ${j.backlog.toLocaleString('en-US')} events`,
          rows: [
            row('bare HTTP loop to the receiver', j.bareReqPerS, 'req/s', null),
            row('backlog drain', j.drain.perS, 'deliveries/s', null, j.drain.expected - j.drain.deliveries,
              { baseline: 'bare HTTP loop to the receiver', note: `${j.drain.deliveries}/${j.drain.expected} arrived` }),
            row('steady rate: event → delivery', j.steady.offeredPerS, 'deliveries/s', { p50Ms: j.steady.p50Ms, p99Ms: j.steady.p99Ms },
              j.steady.expected - j.steady.deliveries, { note: `offered; ${j.steady.deliveries}/${j.steady.expected} arrived` }),
          ],
        })],
        roles: [],
        targets: [],
      };
    },
  },
};

export function legacyArgs(name: string, settings: BenchSettings): string[] {
  return LEGACY[name]?.args(settings) ?? [];
}

/** The scenario's own JSON written since `sinceMs`, in the runner's shape; null when there is none. */
export function legacyResult(name: string, resultsDir: string, sinceMs: number): ScenarioResult | null {
  let newest: string | null = null;
  try {
    newest = readdirSync(resultsDir)
      .filter((f) => f.startsWith(`${name}-`) && f.endsWith('.json'))
      .map((f) => join(resultsDir, f))
      .filter((f) => statSync(f).mtimeMs >= sinceMs)
      // Newest first; names carry the time, so they settle a tie.
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs || b.localeCompare(a))[0] ?? null;
  } catch {
    return null;
  }
  if (!newest) return null;
  const json = JSON.parse(readFileSync(newest, 'utf8')) as Record<string, unknown>;
  let adapted: Omit<ScenarioResult, 'scenario'> | undefined;
  try {
    adapted = LEGACY[name]?.toResult(json);
  } catch {
    adapted = undefined; // its JSON changed shape: kept as detail, untabled
  }
  return { scenario: name, settings: {}, tables: [], roles: [], targets: [], ...adapted, detail: json };
}
