import type { Issue } from '../contracts/errors.js';

/**
 * Active hours of a fence: `{ timezone, windows: [{ days: [1..7] (ISO, 1 = Monday), start: "HH:MM", end: "HH:MM" }] }`.
 * A window whose end is before its start runs past midnight into the next day. Outside its windows
 * a fence takes no evidence: the asset's state toward it stays as it was.
 */
export interface FenceScheduleWindow {
  days: number[];
  start: string;
  end: string;
}

export interface FenceSchedule {
  timezone: string;
  windows: FenceScheduleWindow[];
}

const TIME = /^([01]\d|2[0-3]):([0-5]\d)$|^24:00$/;
const MAX_WINDOWS = 50;

export function validateSchedule(schedule: unknown, path = 'schedule'): Issue[] {
  if (schedule === null || schedule === undefined) return [];
  if (typeof schedule !== 'object' || Array.isArray(schedule)) return [{ path, message: 'must be an object with timezone and windows' }];
  const { timezone, windows } = schedule as Partial<FenceSchedule>;
  const issues: Issue[] = [];
  if (typeof timezone !== 'string' || !isTimeZone(timezone)) {
    issues.push({ path: `${path}.timezone`, message: 'must be an IANA time zone such as "Europe/Paris" or "UTC"' });
  }
  if (!Array.isArray(windows) || windows.length === 0 || windows.length > MAX_WINDOWS) {
    issues.push({ path: `${path}.windows`, message: `must hold 1 to ${MAX_WINDOWS} windows` });
    return issues;
  }
  windows.forEach((window, i) => {
    const at = `${path}.windows.${i}`;
    if (typeof window !== 'object' || window === null) {
      issues.push({ path: at, message: 'must be an object with days, start and end' });
      return;
    }
    const { days, start, end } = window as Partial<FenceScheduleWindow>;
    if (!Array.isArray(days) || days.length === 0 || !days.every((d) => Number.isInteger(d) && d >= 1 && d <= 7)) {
      issues.push({ path: `${at}.days`, message: 'must list ISO weekdays, 1 (Monday) to 7 (Sunday)' });
    }
    if (typeof start !== 'string' || !TIME.test(start)) issues.push({ path: `${at}.start`, message: 'must be a local time "HH:MM"' });
    if (typeof end !== 'string' || !TIME.test(end)) issues.push({ path: `${at}.end`, message: 'must be a local time "HH:MM"' });
    if (start === end && typeof start === 'string') issues.push({ path: `${at}.end`, message: 'must differ from start' });
  });
  return issues;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const minutesOf = (time: string) => Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));
const BUCKET_MS = 15 * 60_000;
const WEEKDAYS: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };

/**
 * Local weekday and minute of a UTC instant in one zone. Intl is slow (microseconds), so the result
 * is cached per 15-minute UTC bucket: every real zone changes its offset only on such boundaries.
 */
class LocalClock {
  private readonly format: Intl.DateTimeFormat;
  private readonly buckets = new Map<number, { weekday: number; minute: number }>();

  constructor(timezone: string) {
    this.format = new Intl.DateTimeFormat('en-US', { timeZone: timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  }

  at(tsMs: number): { weekday: number; minute: number } {
    const bucket = Math.floor(tsMs / BUCKET_MS);
    let start = this.buckets.get(bucket);
    if (!start) {
      let weekday = 1;
      let hour = 0;
      let minute = 0;
      for (const part of this.format.formatToParts(bucket * BUCKET_MS)) {
        if (part.type === 'weekday') weekday = WEEKDAYS[part.value] ?? 1;
        else if (part.type === 'hour') hour = Number(part.value);
        else if (part.type === 'minute') minute = Number(part.value);
      }
      start = { weekday, minute: hour * 60 + minute };
      if (this.buckets.size > 10_000) this.buckets.clear();
      this.buckets.set(bucket, start);
    }
    const minute = start.minute + Math.floor((tsMs - bucket * BUCKET_MS) / 60_000);
    return minute < 1440 ? { weekday: start.weekday, minute } : { weekday: (start.weekday % 7) + 1, minute: minute - 1440 };
  }
}

const clocks = new Map<string, LocalClock>();

export interface CompiledSchedule {
  isActiveAt(tsMs: number): boolean;
}

export function compileSchedule(schedule: FenceSchedule | null | undefined): CompiledSchedule | null {
  if (!schedule || !Array.isArray(schedule.windows) || schedule.windows.length === 0) return null;
  let clock = clocks.get(schedule.timezone);
  if (!clock) {
    clock = new LocalClock(schedule.timezone);
    clocks.set(schedule.timezone, clock);
  }
  const windows = schedule.windows.map((w) => ({ days: new Set(w.days), start: minutesOf(w.start), end: minutesOf(w.end) }));
  const localClock = clock;
  return {
    isActiveAt(tsMs) {
      const { weekday, minute } = localClock.at(tsMs);
      const yesterday = weekday === 1 ? 7 : weekday - 1;
      for (const w of windows) {
        if (w.start < w.end) {
          if (w.days.has(weekday) && minute >= w.start && minute < w.end) return true;
        } else {
          // Overnight: from start on one of its days until end on the next day.
          if (w.days.has(weekday) && minute >= w.start) return true;
          if (w.days.has(yesterday) && minute < w.end) return true;
        }
      }
      return false;
    },
  };
}
