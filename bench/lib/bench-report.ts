/**
 * The tables a bench run prints, and `compare`: pure functions from results to lines of text.
 */
import type { BenchResultFile, BenchRow, BenchTable, ScenarioResult, TargetCheck } from './bench-result.js';

const fmt = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Fixed-width columns, numbers right-aligned. */
function layout(header: string[], body: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)));
  // The first column and a trailing note read left-aligned; figures right-aligned.
  const line = (cells: string[]) => cells.map((cell, c) => (c === 0 || header[c] === 'note' ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...body.map(line)];
}

export function formatTable(table: BenchTable): string[] {
  const notes = table.rows.some((r) => r.note);
  const body = table.rows.map((r: BenchRow) => [
    r.name, fmt(r.throughput), r.unit, fmt(r.p50Ms, 2), fmt(r.p90Ms, 2), fmt(r.p99Ms, 2), fmt(r.maxMs, 1), fmt(r.errors),
    r.ratio !== undefined && r.ratio !== null ? `${r.ratio.toFixed(2)}× ${r.baseline}` : '',
    ...(notes ? [r.note ?? ''] : []),
  ]);
  const header = ['', 'throughput', 'unit', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors', 'vs baseline', ...(notes ? ['note'] : [])];
  return [table.title, ...layout(header, body)];
}

export function formatTarget(t: TargetCheck): string {
  const verdict = t.met === null ? 'not measured' : t.met ? 'met' : 'NOT met';
  const sign = t.comparison === 'at-least' ? '≥' : '≤';
  const digits = t.value !== null && Math.abs(t.value) >= 100 ? 0 : 2;
  return `${t.name}: ${fmt(t.value, digits)} ${t.unit} (floor ${sign} ${fmt(t.floor, t.floor >= 100 ? 0 : 2)} ${t.unit}) — ${verdict}`;
}

export function formatScenario(s: ScenarioResult): string[] {
  const out = [`══ ${s.scenario} ══`];
  for (const table of s.tables) out.push('', ...formatTable(table));
  if (s.roles.length) {
    out.push('', ...layout(['server process', 'CPU % of a core', 'RSS MB (peak)'], s.roles.map((r) => [r.role, fmt(r.cpuPct), fmt(r.rssMb)])));
  }
  if (s.targets.length) out.push('', ...s.targets.map(formatTarget));
  if (s.error) out.push('', `FAILED: ${s.error}`);
  return out;
}

export function formatRun(run: BenchResultFile): string[] {
  const m = run.machine;
  const head = `fieldops bench ${run.at} — commit ${run.commit?.slice(0, 10) ?? 'unknown'}${run.dirty ? ' (uncommitted changes)' : ''}; `
    + `${m.cpus} × ${m.cpuModel}, ${fmt(m.memoryMb)} MB, Linux ${m.kernel}, Node ${m.node}`;
  return [head, ...run.scenarios.flatMap((s) => ['', ...formatScenario(s)])];
}

const change = (a: number | null, b: number | null): string =>
  a === null || b === null || a === 0 ? '–' : `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(1)}%`;

/** B against A: throughput and p99 of every row both hold, scenario by scenario, then rows only one holds. */
export function compareRuns(a: BenchResultFile, b: BenchResultFile): string[] {
  const out = [
    `A: ${a.at} commit ${a.commit?.slice(0, 10) ?? '?'} (${a.machine.cpus} cores, Node ${a.machine.node})`,
    `B: ${b.at} commit ${b.commit?.slice(0, 10) ?? '?'} (${b.machine.cpus} cores, Node ${b.machine.node})`,
  ];
  if (a.machine.cpuModel !== b.machine.cpuModel || a.machine.cpus !== b.machine.cpus) out.push('note: different machines — compare ratios, not absolute figures');
  const only: string[] = [];
  for (const sb of b.scenarios) {
    const sa = a.scenarios.find((s) => s.scenario === sb.scenario);
    if (!sa) {
      only.push(`${sb.scenario}: only in B`);
      continue;
    }
    for (const tb of sb.tables) {
      const ta = sa.tables.find((t) => t.title === tb.title);
      if (!ta) {
        only.push(`${sb.scenario} / ${tb.title}: only in B`);
        continue;
      }
      const body: string[][] = [];
      for (const rb of tb.rows) {
        const ra = ta.rows.find((r) => r.name === rb.name);
        if (!ra) {
          only.push(`${sb.scenario} / ${tb.title} / ${rb.name}: only in B`);
          continue;
        }
        body.push([rb.name, fmt(ra.throughput), fmt(rb.throughput), change(ra.throughput, rb.throughput), rb.unit,
          fmt(ra.p99Ms, 2), fmt(rb.p99Ms, 2), change(ra.p99Ms, rb.p99Ms), ra.ratio != null && rb.ratio != null ? `${ra.ratio.toFixed(2)} → ${rb.ratio.toFixed(2)}` : '']);
      }
      for (const ra of ta.rows) if (!tb.rows.some((r) => r.name === ra.name)) only.push(`${sb.scenario} / ${tb.title} / ${ra.name}: only in A`);
      if (body.length) out.push('', `${sb.scenario} — ${tb.title}`, ...layout(['', 'A', 'B', 'change', 'unit', 'p99 A', 'p99 B', 'change', 'ratio'], body));
    }
    for (const tgt of sb.targets) {
      const before = sa.targets.find((t) => t.name === tgt.name);
      if (before) out.push(`  target ${tgt.name}: ${fmt(before.value, 2)} → ${fmt(tgt.value, 2)} ${tgt.unit} (${tgt.met === null ? 'not measured' : tgt.met ? 'met' : 'NOT met'})`);
    }
  }
  for (const sa of a.scenarios) if (!b.scenarios.some((s) => s.scenario === sa.scenario)) only.push(`${sa.scenario}: only in A`);
  if (only.length) out.push('', ...only);
  return out;
}
