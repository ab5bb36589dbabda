import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBenchArgs, parseDuration, UsageError } from '../../bench/lib/bench-args.js';
import { compareRuns, formatScenario } from '../../bench/lib/bench-report.js';
import { RESULT_SCHEMA, resultProblems, row, target, withRatios, type BenchResultFile } from '../../bench/lib/bench-result.js';
import { Histogram } from '../../bench/lib/histogram.js';
import { legacyArgs, legacyResult } from '../../bench/lib/legacy-scenarios.js';

const SCENARIOS = ['ingest', 'geofence', 'fanout', 'e2e', 'api', 'soak'];

describe('bench arguments', () => {
  it('runs every scenario in order when none is named', () => {
    const parsed = parseBenchArgs(['--quick'], SCENARIOS);
    expect(parsed).toMatchObject({ command: 'run', settings: { scenarios: SCENARIOS, quick: true, durationS: null, rest: [] } });
  });

  it('reads the common options and passes the scenario its own', () => {
    const parsed = parseBenchArgs(['e2e', '--duration', '30s', '--devices=500', '--rate', '2000', '--target', '10.0.0.5', '--modes', 'split', '--embedded'], SCENARIOS);
    expect(parsed).toEqual({
      command: 'run',
      settings: { scenarios: ['e2e'], quick: false, target: '10.0.0.5', durationS: 30, devices: 500, rate: 2000, rest: ['--modes', 'split', '--embedded'] },
    });
  });

  it('reads durations in ms, s, m and bare seconds', () => {
    expect([parseDuration('500ms'), parseDuration('30s'), parseDuration('2m'), parseDuration('7')]).toEqual([0.5, 30, 120, 7]);
    expect(() => parseDuration('soon')).toThrow(UsageError);
    expect(() => parseDuration('0s')).toThrow(UsageError);
  });

  it('refuses unknown scenarios, bad numbers and scenario options shared by several scenarios', () => {
    expect(() => parseBenchArgs(['ingset'], SCENARIOS)).toThrow(/unknown scenario "ingset"/);
    expect(() => parseBenchArgs(['ingest', '--devices', '-3'], SCENARIOS)).toThrow(/--devices needs a whole number/);
    expect(() => parseBenchArgs(['ingest', '--duration'], SCENARIOS)).toThrow(/--duration needs a value/);
    expect(() => parseBenchArgs(['ingest', 'api', '--phases', 'single'], SCENARIOS)).toThrow(/need one scenario/);
  });

  it('reads compare A B and show', () => {
    expect(parseBenchArgs(['compare', 'a.json', 'b.json'], SCENARIOS)).toEqual({ command: 'compare', a: 'a.json', b: 'b.json' });
    expect(() => parseBenchArgs(['compare', 'a.json'], SCENARIOS)).toThrow(UsageError);
    expect(parseBenchArgs(['show', 'a.json'], SCENARIOS)).toEqual({ command: 'show', file: 'a.json' });
  });
});

describe('bench histogram', () => {
  it('reads percentiles and the maximum from bucket upper edges', () => {
    const h = Histogram.ofMs([...Array.from({ length: 98 }, (_, i) => 1 + i * 0.01), 50, 250.4]);
    expect(h.total).toBe(100);
    expect(h.percentileMs(0.5)).toBeCloseTo(1.5, 2);
    expect(h.percentileMs(0.99)).toBeCloseTo(50.01, 2);
    expect(h.maxMs()).toBe(251);
    const merged = new Histogram(h.toJSON());
    merged.add(Histogram.ofMs([0.004]));
    expect(merged.total).toBe(101);
    expect(merged.percentileMs(0.005)).toBeCloseTo(0.01, 3);
    expect(merged.summary()).toMatchObject({ p50Ms: expect.closeTo(1.5, 2), maxMs: 251 });
  });

  it('has no percentile and no maximum when empty', () => {
    expect(new Histogram().summary()).toEqual({ p50Ms: NaN, p90Ms: NaN, p99Ms: NaN, maxMs: NaN });
  });
});

function run(at: string, fixesPerS: number, p99: number): BenchResultFile {
  return {
    schema: RESULT_SCHEMA, at, commit: 'abc1234567', dirty: false,
    machine: { cpus: 2, cpuModel: 'Test CPU', memoryMb: 4096, kernel: '6.1', node: 'v22.0.0' },
    settings: {},
    scenarios: [{
      scenario: 'ingest', settings: {}, roles: [{ role: 'ingest', cpuPct: 150, rssMb: 120 }],
      tables: [withRatios({
        title: 'MQTT QoS 1',
        rows: [row('mosquitto', 50_000, 'msgs/s', null), row('fieldops single-fix', fixesPerS, 'msgs/s', { p50Ms: 1, p90Ms: 2, p99Ms: p99, maxMs: 30 }, 0, { baseline: 'mosquitto' })],
      })],
      targets: [target('single-fix vs Mosquitto', fixesPerS / 50_000, 1, 'at-least', '×')],
    }],
  };
}

describe('bench results', () => {
  it('computes ratios against the named baseline and judges targets', () => {
    const result = run('2026-01-01T00:00:00.000Z', 40_000, 5);
    expect(result.scenarios[0]!.tables[0]!.rows[1]!.ratio).toBe(0.8);
    expect(result.scenarios[0]!.targets[0]).toMatchObject({ value: 0.8, met: false });
    expect(target('e2e p99', 80, 100, 'at-most', 'ms').met).toBe(true);
    expect(target('e2e p99', null, 100, 'at-most', 'ms').met).toBeNull();
  });

  it('accepts its own files and names what is wrong with others', () => {
    expect(resultProblems(JSON.parse(JSON.stringify(run('2026-01-01T00:00:00.000Z', 1, 1))))).toEqual([]);
    expect(resultProblems({ schema: 'x', scenarios: [{ scenario: 'a', tables: [{ title: 't', rows: [{ name: 'r' }] }] }] })).toEqual([
      'schema is "x", not "fieldops-bench/1"', 'at is missing', 'machine.cpus is missing', 'a / t: a row lacks name, unit or errors',
    ]);
  });

  it('prints every column of a table with its ratio, and the targets', () => {
    const text = formatScenario(run('2026-01-01T00:00:00.000Z', 40_000, 5).scenarios[0]!).join('\n');
    expect(text).toContain('p50 ms  p90 ms  p99 ms  max ms  errors');
    expect(text).toMatch(/fieldops single-fix\s+40,000\s+msgs\/s\s+1\.00\s+2\.00\s+5\.00\s+30\.0\s+0\s+0\.80× mosquitto/);
    expect(text).toMatch(/ingest\s+150\s+120/);
    expect(text).toContain('single-fix vs Mosquitto: 0.80 × (floor ≥ 1.00 ×) — NOT met');
  });

  it('compares two runs row by row', () => {
    const text = compareRuns(run('2026-01-01T00:00:00.000Z', 40_000, 5), run('2026-01-02T00:00:00.000Z', 50_000, 4)).join('\n');
    expect(text).toMatch(/fieldops single-fix\s+40,000\s+50,000\s+\+25\.0%\s+msgs\/s\s+5\.00\s+4\.00\s+-20\.0%\s+0\.80 → 1\.00/);
    expect(text).toContain('target single-fix vs Mosquitto: 0.80 → 1.00 × (met)');
  });
});

describe('scenarios that print their own report', () => {
  it('get the runner settings as their own options, and their JSON back as a table', () => {
    const settings = { scenarios: ['webhooks'], quick: true, target: null, durationS: null, devices: null, rate: 800, rest: [] };
    expect(legacyArgs('webhooks', settings)).toEqual(['--seconds', '2', '--rate', '800', '--backlog', '4000']);
    const dir = mkdtempSync(join(tmpdir(), 'bench-legacy-'));
    try {
      const startedMs = Date.now() - 1000;
      expect(legacyResult('webhooks', dir, startedMs)).toBeNull();
      writeFileSync(join(dir, 'webhooks-1.json'), JSON.stringify({
        seconds: 2, endpoints: 4, concurrency: 64, backlog: 4000, bareReqPerS: 1000,
        drain: { deliveries: 15990, expected: 16000, perS: 800 }, steady: { offeredPerS: 2000, deliveries: 4000, expected: 4000, p50Ms: 12, p99Ms: 40 },
      }));
      const result = legacyResult('webhooks', dir, startedMs)!;
      expect(result.tables[0]!.rows.map((r) => [r.name, r.throughput, r.errors, r.ratio ?? null, r.p99Ms])).toEqual([
        ['bare HTTP loop to the receiver', 1000, 0, null, null],
        ['backlog drain', 800, 10, 0.8, null],
        ['steady rate: event → delivery', 2000, 0, null, 40],
      ]);
      expect(resultProblems({ schema: RESULT_SCHEMA, at: 'x', machine: { cpus: 2 }, scenarios: [result] })).toEqual([]);

      writeFileSync(join(dir, 'storm-1.json'), JSON.stringify({ result: {
        devices: 2000, admitted: 2000, publishing: 1990, failed: 10, admittedMs: 4000, publishingMs: 5000,
        percentilesMs: { admitted: [900, 3500], publishing: [1200, 4800] }, storedFixes: 1990, serverPeakRssMb: 300, serverIdleRssMb: 200,
      } }));
      const storm = legacyResult('storm', dir, startedMs)!;
      expect(storm.tables[0]!.rows.map((r) => [r.name, r.throughput, r.p99Ms, r.maxMs, r.errors])).toEqual([
        ['every device admitted (CONNACK)', 500, 3500, 4000, 0],
        ['every first fix committed (PUBACK)', 398, 4800, 5000, 10],
      ]);
      expect(storm.targets[0]).toMatchObject({ value: 4, floor: 10, met: true });
      // A JSON of another shape is kept as detail, untabled.
      writeFileSync(join(dir, 'storm-2.json'), JSON.stringify({ something: 'else' }));
      expect(legacyResult('storm', dir, startedMs)).toMatchObject({ scenario: 'storm', tables: [], detail: { something: 'else' } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
