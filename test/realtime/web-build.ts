import { execFileSync } from 'node:child_process';

/** Makes sure dist/web holds the current live map (test files run in parallel; one builds, the others wait). */
export function ensureWebBuilt(): void {
  execFileSync(process.execPath, ['scripts/build-web.mjs', '--if-stale'], { stdio: 'ignore' });
}
