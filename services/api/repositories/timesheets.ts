import type { PunchKind } from '../../shared/contracts/domain.js';
import type { Queryable } from '../../shared/db.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { SqlParams } from '../sql.js';

export const TIMESHEET_STATUSES = ['pending', 'approved', 'rejected'] as const;
export type TimesheetStatus = (typeof TIMESHEET_STATUSES)[number];

export interface TimesheetPunch {
  id: string;
  kind: PunchKind;
  ts: Date;
  device_id: string;
  gps_verified: boolean | null;
  site_id: string | null;
  distance_m: number | null;
  lat: number | null;
  lon: number | null;
}

/** An in punch and the out punch that closes it; either may be missing (a forgotten punch). */
export interface WorkPeriod {
  in: Date | null;
  out: Date | null;
  hours: number;
  verified: boolean;
}

/**
 * One employee's day (UTC): their punches, paired into periods, the hours those add up to, whether
 * every punch was GPS-verified, and a manager's decision. Its id is `{employee_id}_{YYYY-MM-DD}`.
 */
export interface Timesheet {
  id: string;
  employee_id: string;
  employee_name: string | null;
  date: string;
  status: TimesheetStatus;
  hours: number;
  verified: boolean;
  complete: boolean;
  periods: WorkPeriod[];
  punches: TimesheetPunch[];
  note: string | null;
  decided_by: string | null;
  decided_at: Date | null;
}

export interface PunchRecord {
  id: string;
  employee_id: string | null;
  employee_ref: string;
  device_id: string;
  kind: PunchKind;
  ts: Date;
  received_at: Date;
  lat: number | null;
  lon: number | null;
  accuracy_m: number | null;
  gps_verified: boolean | null;
  site_id: string | null;
  distance_m: number | null;
  verified_at: Date | null;
}

export interface TimesheetFilters {
  employee_id?: string;
  from?: string;
  to?: string;
  status?: TimesheetStatus;
}

export interface PunchFilters {
  employee_id?: string;
  device_id?: string;
  from?: string;
  to?: string;
  gps_verified?: boolean;
  unknown_employee?: boolean;
}

const TIMESHEET_ID = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_(\d{4}-\d{2}-\d{2})$/i;

export function parseTimesheetId(id: string): { employeeId: string; date: string } | null {
  const match = TIMESHEET_ID.exec(id);
  if (!match || Number.isNaN(Date.parse(`${match[2]}T00:00:00Z`))) return null;
  return { employeeId: match[1]!.toLowerCase(), date: match[2]! };
}

interface TimesheetRow extends Omit<Timesheet, 'hours' | 'verified' | 'complete' | 'periods' | 'punches'> {
  punches: (Omit<TimesheetPunch, 'ts'> & { ts: string })[];
}

/**
 * Timesheets are generated from the punches (`punches_v`, verified by the geofence worker); only
 * approvals are stored (`timesheet_approvals`), so a day is `pending` until a manager decides.
 */
export function createTimesheetRepository(db: Queryable) {
  const list = (filters: TimesheetFilters, query: ListQuery): Promise<ListResult<Timesheet>> => {
    const params = new SqlParams();
    const inner = ['p.employee_id is not null'];
    if (filters.employee_id) inner.push(`p.employee_id = ${params.add(filters.employee_id)}`);
    if (filters.from) inner.push(`p.ts >= ${params.add(filters.from)}`);
    if (filters.to) inner.push(`p.ts < ${params.add(filters.to)}`);
    const where: string[] = [];
    if (filters.status) where.push(`coalesce(a.status, 'pending') = ${params.add(filters.status)}`);
    return listPage<TimesheetRow>(db, {
      select: `t.employee_id::text || '_' || t.work_date::text as id, t.employee_id, e.name as employee_name,
               t.work_date::text as date, coalesce(a.status, 'pending') as status, a.note, a.decided_by, a.decided_at, t.punches`,
      from: `(select p.employee_id, (p.ts at time zone 'UTC')::date as work_date,
                     jsonb_agg(jsonb_build_object('id', p.id::text, 'kind', p.kind, 'ts', p.ts, 'device_id', p.device_id,
                       'gps_verified', p.gps_verified, 'site_id', p.verified_site_id, 'distance_m', p.distance_m,
                       'lat', p.lat, 'lon', p.lon) order by p.ts, p.id) as punches
                from punches_v p where ${inner.join(' and ')}
               group by 1, 2) t
         left join timesheet_approvals a on a.employee_id = t.employee_id and a.work_date = t.work_date
         left join employees e on e.id = t.employee_id`,
      where,
      params,
      id: `t.employee_id::text || '_' || t.work_date::text`,
      sortable: { date: 't.work_date' },
      defaultSort: '-date',
    }, query).then((page) => ({ ...page, data: page.data.map(toTimesheet) }));
  };

  const find = async (id: string): Promise<Timesheet | null> => {
    const key = parseTimesheetId(id);
    if (!key) return null;
    const start = `${key.date}T00:00:00Z`;
    const end = new Date(Date.parse(start) + 86_400_000).toISOString();
    const page = await list({ employee_id: key.employeeId, from: start, to: end }, { limit: 1 });
    return page.data[0] ?? null;
  };

  return {
    list,
    find,

    /** Records a manager's decision on an existing timesheet (a later one replaces it); null when there is no such timesheet. */
    async decide(id: string, status: 'approved' | 'rejected', userId: string, note: string | null): Promise<Timesheet | null> {
      const key = parseTimesheetId(id);
      if (!key || !(await find(id))) return null;
      await db.query(
        `insert into timesheet_approvals (tenant_id, employee_id, work_date, status, note, decided_by)
         values (app_tenant(), $1, $2, $3, $4, $5)
         on conflict (tenant_id, employee_id, work_date)
         do update set status = excluded.status, note = excluded.note, decided_by = excluded.decided_by, decided_at = now()`,
        [key.employeeId, key.date, status, note, userId],
      );
      return find(id);
    },

    listPunches(filters: PunchFilters, query: ListQuery): Promise<ListResult<PunchRecord>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.employee_id) where.push(`p.employee_id = ${params.add(filters.employee_id)}`);
      if (filters.device_id) where.push(`p.device_id = ${params.add(filters.device_id)}`);
      if (filters.from) where.push(`p.ts >= ${params.add(filters.from)}`);
      if (filters.to) where.push(`p.ts < ${params.add(filters.to)}`);
      if (filters.gps_verified !== undefined) where.push(`p.gps_verified is ${filters.gps_verified ? 'true' : 'not true'}`);
      if (filters.unknown_employee !== undefined) {
        // Unknown means checked and matched no one; a punch not yet verified is neither.
        where.push(filters.unknown_employee ? 'p.employee_id is null and p.verified_at is not null' : 'p.employee_id is not null');
      }
      return listPage<PunchRecord>(db, {
        select: `p.id, p.employee_id, p.employee_ref, p.device_id, p.kind, p.ts, p.received_at, p.lat, p.lon, p.accuracy_m,
                 p.gps_verified, p.verified_site_id as site_id, p.distance_m, p.verified_at`,
        from: 'punches_v p',
        where,
        params,
        id: 'p.id',
        sortable: { ts: 'p.ts' },
        defaultSort: '-ts',
        total: false,
      }, query);
    },
  };
}

export type TimesheetRepository = ReturnType<typeof createTimesheetRepository>;

function toTimesheet(row: TimesheetRow): Timesheet {
  const punches = row.punches.map((p) => ({ ...p, ts: new Date(p.ts) }));
  const periods = pairPunches(punches);
  const hours = periods.reduce((sum, p) => sum + p.hours, 0);
  return {
    ...row,
    punches,
    periods,
    hours: Math.round(hours * 100) / 100,
    verified: punches.every((p) => p.gps_verified === true),
    complete: periods.every((p) => p.in !== null && p.out !== null),
  };
}

/** In, out, in, out…: each in is closed by the next out; an in after an in, or an out after an out, stands alone. */
function pairPunches(punches: TimesheetPunch[]): WorkPeriod[] {
  const periods: WorkPeriod[] = [];
  let open: TimesheetPunch | null = null;
  for (const punch of punches) {
    if (punch.kind === 'in') {
      if (open) periods.push({ in: open.ts, out: null, hours: 0, verified: open.gps_verified === true });
      open = punch;
    } else if (open) {
      const hours = (punch.ts.getTime() - open.ts.getTime()) / 3_600_000;
      periods.push({ in: open.ts, out: punch.ts, hours: Math.round(hours * 100) / 100, verified: open.gps_verified === true && punch.gps_verified === true });
      open = null;
    } else {
      periods.push({ in: null, out: punch.ts, hours: 0, verified: punch.gps_verified === true });
    }
  }
  if (open) periods.push({ in: open.ts, out: null, hours: 0, verified: open.gps_verified === true });
  return periods;
}
