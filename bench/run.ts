/**
 * `npm run bench -- <scenario> [options]`: runs bench/<scenario>.ts, whose default export takes the
 * remaining arguments. Each scenario prints a table and writes JSON under bench/results/.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const scenarios = readdirSync(here).filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_')).map((f) => f.slice(0, -3));
const [scenario, ...args] = process.argv.slice(2);

if (!scenario || !scenarios.includes(scenario)) {
  console.error(`usage: npm run bench -- <scenario> [options]\nscenarios: ${scenarios.join(', ')}`);
  process.exit(scenario ? 2 : 1);
}
const module = (await import(join(here, `${scenario}.ts`))) as { default: (args: string[]) => Promise<void> };
await module.default(args);
