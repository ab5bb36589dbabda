/**
 * What a bench run records (bench/README.md, "Results"): one JSON file per run under bench/results/, naming the
 * machine, the commit and the settings beside every scenario's tables, so that two runs compare
 * (`npm run bench -- compare A B`) and every figure can be read next to its baseline.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import type { LatencySummary } from './histogram.js';

export const RESULT_SCHEMA = 'fieldops-bench/1';

/** One line of a table: a phase, a hop or a baseline. Null where the figure does not apply. */
export interface BenchRow {
  name: string;
  throughput: number | null;
  /** What throughput counts: `fixes/s`, `msgs/s`, `req/s`, `deliveries/s`, `CONNECTs/s`, … */
  unit: string;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  errors: number;
  /** The row of the same table this one is measured against, and throughput ÷ its throughput. */
  baseline?: string;
  ratio?: number | null;
  note?: string;
}

export interface BenchTable {
  title: string;
  rows: BenchRow[];
}

/** One server process (or process tree) under test, over the scenario's measured phases. */
export interface RoleUsage {
  role: string;
  /** Mean CPU in % of one core. */
  cpuPct: number | null;
  /** Resident memory at its highest sample, in MB. */
  rssMb: number | null;
}

/** A floor of issue 20, as it stands in this run. */
export interface TargetCheck {
  name: string;
  value: number | null;
  /** `≥ floor` for ratios and rates, `≤ floor` for latencies. */
  floor: number;
  comparison: 'at-least' | 'at-most';
  unit: string;
  met: boolean | null;
}

export interface ScenarioResult {
  scenario: string;
  settings: Record<string, unknown>;
  tables: BenchTable[];
  roles: RoleUsage[];
  targets: TargetCheck[];
  /** Scenario-specific detail (samples over time, commit statistics, …). */
  detail?: unknown;
  /** Set when the scenario failed: what was measured before is kept. */
  error?: string;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryMb: number;
  kernel: string;
  node: string;
}

export interface BenchResultFile {
  schema: typeof RESULT_SCHEMA;
  at: string;
  commit: string | null;
  /** Uncommitted changes in the working tree when the run started. */
  dirty: boolean;
  machine: Machine;
  settings: Record<string, unknown>;
  scenarios: ScenarioResult[];
}

/** A row from a latency summary; figures rounded to what the histograms resolve. */
export function row(name: string, throughput: number | null, unit: string, latency: Partial<LatencySummary> | null, errors = 0, extra: Partial<BenchRow> = {}): BenchRow {
  const ms = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? null : Math.round(v * 100) / 100);
  return {
    name, throughput: throughput === null || !Number.isFinite(throughput) ? null : Math.round(throughput), unit,
    p50Ms: ms(latency?.p50Ms), p90Ms: ms(latency?.p90Ms), p99Ms: ms(latency?.p99Ms), maxMs: ms(latency?.maxMs), errors, ...extra,
  };
}

/** Sets `ratio` on every row naming a baseline present in the same table. */
export function withRatios(table: BenchTable): BenchTable {
  for (const r of table.rows) {
    if (!r.baseline) continue;
    const base = table.rows.find((b) => b.name === r.baseline);
    r.ratio = base?.throughput && r.throughput !== null ? Math.round((r.throughput / base.throughput) * 100) / 100 : null;
  }
  return table;
}

export function target(name: string, value: number | null, floor: number, comparison: TargetCheck['comparison'], unit: string): TargetCheck {
  const met = value === null || !Number.isFinite(value) ? null : comparison === 'at-least' ? value >= floor : value <= floor;
  return { name, value: value === null || !Number.isFinite(value) ? null : value, floor, comparison, unit, met };
}

export function machine(): Machine {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryMb: Math.round(totalmem() / 2 ** 20),
    kernel: release(),
    node: process.version,
  };
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function commitOf(): { commit: string | null; dirty: boolean } {
  return { commit: git(['rev-parse', 'HEAD']), dirty: (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '' };
}

/** The problems that make `value` no bench result (empty when it is one); `compare` refuses anything else. */
export function resultProblems(value: unknown): string[] {
  const problems: string[] = [];
  const file = value as Partial<BenchResultFile> | null;
  if (typeof file !== 'object' || file === null) return ['not a JSON object'];
  if (file.schema !== RESULT_SCHEMA) problems.push(`schema is ${JSON.stringify(file.schema)}, not "${RESULT_SCHEMA}"`);
  if (typeof file.at !== 'string') problems.push('at is missing');
  if (typeof file.machine?.cpus !== 'number') problems.push('machine.cpus is missing');
  if (!Array.isArray(file.scenarios)) return [...problems, 'scenarios is not a list'];
  for (const s of file.scenarios) {
    if (typeof s?.scenario !== 'string') problems.push('a scenario has no name');
    if (!Array.isArray(s?.tables)) problems.push(`${s?.scenario}: tables is not a list`);
    for (const t of s?.tables ?? []) {
      for (const r of t.rows ?? []) {
        if (typeof r.name !== 'string' || typeof r.unit !== 'string' || typeof r.errors !== 'number') problems.push(`${s.scenario} / ${t.title}: a row lacks name, unit or errors`);
      }
    }
  }
  return problems;
}

/** Writes the run to `dir` and returns the file's path. */
export function writeResult(dir: string, result: BenchResultFile): string {
  mkdirSync(dir, { recursive: true });
  const names = result.scenarios.map((s) => s.scenario);
  const label = names.length > 3 ? 'all' : names.join('+');
  const file = join(dir, `run-${label}-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}
