/**
 * CPU and memory of the server processes under test, read from /proc (Linux): each role's process together
 * with its children (the further ingest processes of INGEST_PROCESSES). Elsewhere the figures are null.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { RoleUsage } from './bench-result.js';

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ: 100 on every Linux Node supports). */
const TICKS_PER_S = 100;

function statFields(pid: string): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  } catch {
    return null; // gone meanwhile, or no /proc
  }
}

function rssKb(pid: string): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** The process and its direct children. */
function family(pid: number): string[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  return entries.filter((e) => Number(e) === pid || Number(statFields(e)?.[1]) === pid);
}

/** CPU ticks (user + system) used so far by a process and its children; NaN when unreadable. */
export function processCpuTicks(pid: number): number {
  let ticks = 0;
  for (const p of family(pid)) {
    const fields = statFields(p);
    if (fields) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks || NaN;
}

/**
 * Nanoseconds the event-loop threads (the main thread of a process and of each child) have run, and have
 * waited runnable for a CPU (/proc/<pid>/schedstat); NaN when unreadable. The wait is what a loaded machine
 * costs a server that has work to do: time it was ready to run while others held the cores.
 */
export function processSchedNs(pid: number): { runNs: number; waitNs: number } {
  let runNs = 0;
  let waitNs = 0;
  for (const p of family(pid)) {
    try {
      const [run, wait] = readFileSync(`/proc/${p}/schedstat`, 'utf8').split(' ');
      runNs += Number(run);
      waitNs += Number(wait);
    } catch {
      // gone meanwhile, or no /proc
    }
  }
  return runNs ? { runNs, waitNs } : { runNs: NaN, waitNs: NaN };
}

/** Resident memory of a process and its children, in MB; NaN when unreadable. */
export function processRssMb(pid: number): number {
  const kb = family(pid).reduce((sum, p) => sum + rssKb(p), 0);
  return kb ? Math.round((kb / 1024) * 10) / 10 : NaN;
}

/**
 * Samples named processes while a phase runs: mean CPU between `start()` and `stop()`, peak RSS over samples
 * every `everyMs`. `stop()` may be called once; the processes may exit meanwhile.
 */
export class RoleSampler {
  private readonly ticksAtStart = new Map<string, number>();
  private readonly peakRss = new Map<string, number>();
  private startedAt = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly roles: { role: string; pid: number }[], private readonly everyMs = 1000) {}

  start(): this {
    this.startedAt = performance.now();
    for (const { role, pid } of this.roles) this.ticksAtStart.set(role, processCpuTicks(pid));
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
    return this;
  }

  /** Current RSS of every role, MB (also counted toward the peak). */
  sample(): Record<string, number> {
    const now: Record<string, number> = {};
    for (const { role, pid } of this.roles) {
      const mb = processRssMb(pid);
      now[role] = mb;
      if (Number.isFinite(mb)) this.peakRss.set(role, Math.max(mb, this.peakRss.get(role) ?? 0));
    }
    return now;
  }

  stop(): RoleUsage[] {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    const seconds = (performance.now() - this.startedAt) / 1000;
    return this.roles.map(({ role, pid }) => {
      const used = processCpuTicks(pid) - this.ticksAtStart.get(role)!;
      const cpuPct = Number.isFinite(used) && seconds > 0 ? Math.round(((used / TICKS_PER_S) / seconds) * 100) : null;
      return { role, cpuPct, rssMb: this.peakRss.get(role) ?? null };
    });
  }
}

/** Usage of the same role over several phases: mean of the CPU figures, peak of the RSS. */
export function mergeUsage(usages: RoleUsage[]): RoleUsage[] {
  const byRole = new Map<string, RoleUsage[]>();
  for (const u of usages) byRole.set(u.role, [...(byRole.get(u.role) ?? []), u]);
  return [...byRole].map(([role, list]) => {
    const cpus = list.map((u) => u.cpuPct).filter((v): v is number => v !== null);
    const rss = list.map((u) => u.rssMb).filter((v): v is number => v !== null);
    return { role, cpuPct: cpus.length ? Math.round(cpus.reduce((a, b) => a + b, 0) / cpus.length) : null, rssMb: rss.length ? Math.max(...rss) : null };
  });
}
