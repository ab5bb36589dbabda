/**
 * What the runner (bench/run.ts) hands a scenario and gets back. A scenario module's default export takes its
 * own options (the arguments the runner did not read) and the run's context, and returns its tables; one
 * that returns nothing printed its own report, and the run records that it ran.
 */
import type { BenchSettings } from './bench-args.js';
import type { ScenarioResult } from './bench-result.js';

export interface ScenarioContext {
  settings: BenchSettings;
}

export type ScenarioMain = (args: string[], context?: ScenarioContext) => Promise<ScenarioResult | void>;

/** The figure the settings give (`--duration`, `--devices`, `--rate`), else the quick or the full default. */
export function pick(given: number | null | undefined, context: ScenarioContext | undefined, full: number, quick: number): number {
  if (given !== null && given !== undefined) return given;
  return context?.settings.quick ? quick : full;
}
