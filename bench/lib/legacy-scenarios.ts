/**
 * Scenarios that print their own report and write their own JSON (bench/webhooks.ts, of the webhooks issue) take
 * their own options, not the runner's context. Here each one's registration: the runner's settings in its options
 * (`--quick` as short ones), and its JSON read back into the runner's tables, so that its figures stand in the
 * run's result beside the others'. A scenario that returns its tables needs no entry.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchSettings } from './bench-args.js';
import { row, withRatios, type ScenarioResult } from './bench-result.js';

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

const LEGACY: Record<string, Legacy> = {
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
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0] ?? null;
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
