/**
 * `npm run bench [-- [scenario…] [--quick] [--duration 30s] [--devices N] [--rate R] [--target HOST] [scenario options]]`
 * runs the scenarios (all of them, in the order below, without a name), prints each one's table and writes one
 * JSON result for the run under bench/results/. `npm run bench -- compare A.json B.json` prints B's change
 * against A; `npm run bench -- show RESULT.json` prints a result's tables again. See bench/README.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs, UsageError, type BenchSettings } from './lib/bench-args.js';
import { compareRuns, formatRun, formatScenario, formatTarget } from './lib/bench-report.js';
import { commitOf, machine, RESULT_SCHEMA, resultProblems, writeResult, type BenchResultFile, type ScenarioResult } from './lib/bench-result.js';
import { legacyArgs, legacyResult } from './lib/legacy-scenarios.js';
import type { ScenarioMain } from './lib/scenario.js';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Every scenario, in running order: the throughput scenarios first, the whole path next, the long soak last.
 * A scenario is bench/<name>.ts; one that prints its own report registers in bench/lib/legacy-scenarios.ts.
 */
const ORDER = ['ingest', 'storm', 'geofence', 'fanout', 'e2e', 'api', 'webhooks', 'soak'];
const present = ORDER.filter((name) => existsSync(join(here, `${name}.ts`)));
/** The scenarios that can measure a running platform (`--target`); the others start servers of their own. */
const TARGETABLE = ['e2e', 'soak'];

const USAGE = `usage: npm run bench [-- [scenario…] [--quick] [--duration 30s] [--devices N] [--rate R] [--target HOST] [scenario options]]
       npm run bench -- compare A.json B.json
       npm run bench -- show RESULT.json
scenarios: ${present.join(', ')}`;

function readResult(path: string): BenchResultFile {
  const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
  const problems = resultProblems(value);
  if (problems.length) throw new UsageError(`${path} is no ${RESULT_SCHEMA} result: ${problems.join('; ')}`);
  return value as BenchResultFile;
}

async function runScenario(name: string, settings: BenchSettings): Promise<ScenarioResult> {
  const module = (await import(join(here, `${name}.ts`))) as { default: ScenarioMain };
  const empty = { scenario: name, settings: {}, tables: [], roles: [], targets: [] };
  const startedMs = Date.now();
  try {
    const result = await module.default([...legacyArgs(name, settings), ...settings.rest], { settings });
    // A scenario that returns nothing printed its own report, and wrote its own JSON.
    return result ?? legacyResult(name, join(here, 'results'), startedMs) ?? { ...empty, detail: 'printed its own report' };
  } catch (err) {
    return { ...empty, error: err instanceof Error ? err.message : String(err) };
  }
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseBenchArgs(argv, present);
  if (parsed.command === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (parsed.command === 'show') {
    console.log(formatRun(readResult(parsed.file)).join('\n'));
    return 0;
  }
  if (parsed.command === 'compare') {
    console.log(compareRuns(readResult(parsed.a), readResult(parsed.b)).join('\n'));
    return 0;
  }
  const { settings } = parsed;
  const started = new Date();
  const { commit, dirty } = commitOf();
  const run: BenchResultFile = {
    schema: RESULT_SCHEMA, at: started.toISOString(), commit, dirty, machine: machine(),
    settings: {
      argv, quick: settings.quick, target: settings.target, durationS: settings.durationS, devices: settings.devices, rate: settings.rate,
      DATABASE_URL: process.env.DATABASE_URL ? 'set' : 'default', REDIS_URL: process.env.REDIS_URL ? 'set' : 'default',
    },
    scenarios: [],
  };
  console.log(formatRun(run)[0]);
  const missing = ORDER.filter((name) => !present.includes(name));
  if (missing.length && settings.scenarios.length === present.length) console.log(`(not on this branch: ${missing.join(', ')})`);
  for (const name of settings.scenarios) {
    if (settings.target && !TARGETABLE.includes(name)) {
      console.log(`\n▶ ${name}: skipped — it starts servers of its own and cannot measure --target ${settings.target}`);
      continue;
    }
    console.log(`\n▶ ${name}`);
    const t0 = performance.now();
    const result = await runScenario(name, settings);
    result.settings = { ...result.settings, seconds: Math.round((performance.now() - t0) / 1000) };
    run.scenarios.push(result);
    console.log(`\n${formatScenario(result).join('\n')}`);
  }
  const file = writeResult(join(here, 'results'), run);
  const failed = run.scenarios.filter((s) => s.error);
  console.log(`\n${run.scenarios.length} scenario(s) in ${Math.round((Date.now() - started.getTime()) / 1000)} s; result: ${file}`);
  if (run.scenarios.length > 1) {
    console.log('\nTargets:');
    for (const s of run.scenarios) for (const t of s.targets) console.log(`  ${s.scenario}: ${formatTarget(t)}`);
  }
  return failed.length ? 1 : 0;
}

let code: number;
try {
  code = await main(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  console.error(`${err.message}\n\n${USAGE}`);
  code = 2;
}
// A client a scenario left open (a Redis connection closing slowly) must not keep the run alive.
process.exit(code);
