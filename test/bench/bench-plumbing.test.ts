import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { resultProblems, type BenchResultFile } from '../../bench/lib/bench-result.js';

const run = promisify(execFile);

/**
 * The runner end to end on a tiny e2e scenario: the platform in one process, a few devices, a second of load. Checks
 * the plumbing — servers started and stopped, load generated, every hop measured, the table printed and the JSON
 * written — not the figures (the machine running the tests is busy with other work).
 */
describe('npm run bench', () => {
  it('runs a tiny e2e scenario end to end, prints its table and writes its result', async () => {
    const { stdout } = await run(process.execPath, [
      '--import', 'tsx', 'bench/run.ts', 'e2e', '--duration', '2s', '--rate', '300', '--devices', '30', '--shapes', 'one', '--warmup', '1', '--cycle', '5',
    ], { env: { ...process.env, LOG_LEVEL: 'error' }, maxBuffer: 16 * 1024 * 1024 });
    const file = /result: (\S+\.json)/.exec(stdout)?.[1];
    expect(file, stdout).toBeDefined();
    try {
      expect(stdout).toContain('e2e — every role in one process (the default): 300 fixes/s offered by 30 devices, 2 s');
      expect(stdout).toMatch(/p50 ms\s+p90 ms\s+p99 ms\s+max ms\s+errors/);
      const result = JSON.parse(readFileSync(file!, 'utf8')) as BenchResultFile;
      expect(resultProblems(result)).toEqual([]);
      const [e2e] = result.scenarios;
      expect(e2e).toMatchObject({ scenario: 'e2e' });
      expect(e2e!.error).toBeUndefined();
      const rows = Object.fromEntries(e2e!.tables[0]!.rows.map((r) => [r.name, r]));
      expect(Object.keys(rows)).toEqual(expect.arrayContaining([
        'fix → commit (PUBACK)', 'fix → geofence event row', 'event row → events stream', 'events stream → dispatcher socket',
        'fix → dispatcher socket (end to end)', 'fix → webhook receiver',
      ]));
      // Every fix offered was committed, and geofence events reached the dispatcher's socket.
      expect(rows['fix → commit (PUBACK)']).toMatchObject({ errors: 0 });
      expect(rows['fix → commit (PUBACK)']!.throughput).toBeGreaterThan(0);
      expect(rows['fix → dispatcher socket (end to end)']!.throughput).toBeGreaterThan(0);
      expect(e2e!.roles.map((r) => r.role)).toEqual(['all roles (one)']);
      expect(e2e!.targets[0]).toMatchObject({ name: 'e2e p99, every role in one process (the default)', floor: 100, comparison: 'at-most' });
    } finally {
      if (file) rmSync(file, { force: true });
    }
  }, 240_000);
});
