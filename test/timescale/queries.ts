import { beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { PoolClient } from '../../services/shared/db.js';
import { createEventRepository } from '../../services/api/repositories/events.js';
import { createGpsEventRepository, type GpsBucket, type GpsFix } from '../../services/api/repositories/gps-events.js';
import { createTimesheetRepository } from '../../services/api/repositories/timesheets.js';
import { insertEvents } from '../../services/shared/outbox.js';
import { createPunchRepository } from '../../services/geofence/punch-repository.js';
import { existingPositionIds, insertPunches } from '../../services/ingest/telemetry-writer.js';
import type { PunchRow } from '../../ingest/rows.js';
import { asTenant, createAsset, createDevice, createEmployee, createOrg } from '../support/factories.js';
import { asService, servicePool, withOwner, type TimescaleDatabase } from '../support/timescale.js';

const day = 86_400_000;
const hour = 3_600_000;
const today = Math.floor(Date.now() / day) * day; // whole UTC days, so each day is one chunk and one timesheet
const oldDay = today - 45 * day; // compressed by both policies (positions after 7 days, punches after 30)
const at = (dayStart: number, hours: number, minutes = 0) => dayStart + hours * hour + minutes * 60_000;
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

interface Tenant {
  id: string;
  adminId: string;
  assetId: string;
  trackerId: string;
  clockId: string;
  employeeId: string;
}

/**
 * The time-series paths end to end on TimescaleDB, each step as the role that runs it in production:
 * ingest writes fixes and punches, the worker verifies punches and writes events, the compression
 * policies compress the old chunks, and the API's own repositories (services/api/repositories) serve
 * /v1/gps-events (with and without `bucket`), /v1/timesheets and /v1/events as `fieldops_api` with
 * the tenant set — the statements the API runs, not copies of them.
 */
export function describeQueries(database: () => TimescaleDatabase): void {
  let a: Tenant;
  let b: Tenant;
  let fenceA: string;

  const owner = <T>(work: (db: PoolClient) => Promise<T>) => withOwner(database(), work);

  const asApi = <T>(tenantId: string, work: (db: PoolClient) => Promise<T>) => owner((db) => asService(db, 'api', tenantId, () => work(db)));

  async function createTenantWithDevices(): Promise<Tenant> {
    const org = await createOrg(database().owner);
    const assetId = await createAsset(database().owner, org.id);
    const tracker = await createDevice(database().owner, org.id, { assetId });
    const clock = await createDevice(database().owner, org.id, { kind: 'attendance' });
    // The same badge in both tenants: the worker must resolve it within the punch's own tenant.
    const employeeId = await createEmployee(database().owner, org.id, { name: 'Grace', badge_code: 'B-7' });
    const adminId = await asTenant(database().owner, org.id, async (db) => (await db.query<{ id: string }>('select id from users')).rows[0]!.id);
    return { id: org.id, adminId, assetId, trackerId: tracker.id, clockId: clock.id, employeeId };
  }

  /** Ingest, as `fieldops_ingest`: fixes (INSERT, which is what its COPY is checked for), punches through its writer. */
  async function ingest(ingestPool: pg.Pool, tenant: Tenant, fixes: { ts: number; lat: number; lon: number }[], punches: { ts: number; kind: 'in' | 'out' }[]) {
    for (const fix of fixes) {
      await ingestPool.query(
        'insert into positions (tenant_id, device_id, asset_id, ts, lat, lon, speed_mps) values ($1, $2, $3, $4, $5, $6, 4)',
        [tenant.id, tenant.trackerId, tenant.assetId, new Date(fix.ts), fix.lat, fix.lon],
      );
    }
    const stored = await existingPositionIds(ingestPool, fixes.map(() => tenant.trackerId), fixes.map((f) => f.ts));
    expect(stored.every((id) => id !== null)).toBe(true);
    const rows: PunchRow[] = punches.map((p) => ({
      tenantId: tenant.id, deviceId: tenant.clockId, siteId: null, tsMs: p.ts, employeeRef: 'B-7', kind: p.kind, lat: 52.5, lon: 13.4, accuracyM: 5,
    }));
    const ids = await insertPunches(ingestPool, rows, { runId: 1, cutKey: Date.now() * 1000 });
    expect(ids.every((id) => id !== null)).toBe(true);
    return rows.map((row, i) => ({ id: ids[i]!, tsMs: row.tsMs, tenantId: row.tenantId, ref: row.employeeRef }));
  }

  beforeAll(async () => {
    a = await createTenantWithDevices();
    b = await createTenantWithDevices();
    fenceA = await asTenant(database().owner, a.id, async (db) => (await db.query<{ id: string }>(
      `insert into geofences (tenant_id, name, kind, geometry, radius_m) values ($1, 'Depot', 'site', $2, 200) returning id`,
      [a.id, { type: 'Point', coordinates: [13.4, 52.5] }])).rows[0]!.id);

    const ingestPool = servicePool(database().config, 'ingest');
    let punches;
    try {
      const depot = { lat: 52.5, lon: 13.4 };
      const away = { lat: 52.6, lon: 13.6 };
      punches = [
        ...await ingest(ingestPool, a, [
          { ts: at(oldDay, 9), ...depot }, { ts: at(oldDay, 9, 5), ...depot },
          { ts: at(today, 0, 1), ...depot }, { ts: at(today, 0, 2), ...depot }, { ts: at(today, 0, 3), ...depot }, { ts: at(today, 0, 4), ...away },
        ], [{ ts: at(oldDay, 8), kind: 'in' }, { ts: at(oldDay, 16), kind: 'out' }, { ts: at(today, 0), kind: 'in' }, { ts: at(today, 0, 30), kind: 'out' }]),
        ...await ingest(ingestPool, b, [{ ts: at(oldDay, 9), ...depot }, { ts: at(today, 0, 1), ...depot }],
          [{ ts: at(oldDay, 7), kind: 'in' }, { ts: at(today, 0, 10), kind: 'in' }]),
      ];
    } finally {
      await ingestPool.end();
    }

    // The worker, as `fieldops_worker` across tenants: who punched, what GPS verification found, the events.
    await owner((db) => asService(db, 'worker', null, async () => {
      const repository = createPunchRepository(db);
      const employees = await repository.resolveEmployees(punches.map((p) => ({ tenantId: p.tenantId, ref: p.ref })));
      await repository.recordVerifications(punches.map((p, i) => ({
        id: p.id, tsMs: p.tsMs, employeeId: employees[i]!, gpsVerified: true, siteId: p.tenantId === a.id ? fenceA : null, distanceM: 3,
      })));
      await insertEvents(db, [a, b].map((t) => ({
        tenantId: t.id, type: 'asset.geofence_entered' as const, occurredAt: new Date(at(today, 0, 1)).toISOString(),
        data: {
          asset_id: t.assetId, device_id: t.trackerId, geofence_id: fenceA, geofence_name: 'Depot', geofence_kind: 'site' as const,
          lat: 52.5, lon: 13.4, ts: new Date(at(today, 0, 1)).toISOString(), accuracy_m: null, speed_mps: 4,
        },
        idempotencyKey: `enter-${t.id}`, assetId: t.assetId, deviceId: t.trackerId,
      })));
    }, { commit: true }));

    // What the compression policies do on schedule (PGlite runs no background workers).
    await owner(async (db) => {
      const { rows: jobs } = await db.query<{ job_id: number }>(`select job_id from timescaledb_information.jobs where proc_name = 'policy_compression'`);
      for (const { job_id } of jobs) await db.query(`call run_job(${Number(job_id)})`);
      const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from timescaledb_information.chunks where is_compressed`);
      expect(rows[0]!.n).toBe(2);
    });
  }, 180_000);

  describe('/v1/gps-events on TimescaleDB, as fieldops_api', () => {
    it("lists the tenant's fixes newest first, those in compressed chunks included, and no other tenant's", async () => {
      const page = await asApi(a.id, (db) => createGpsEventRepository(db).list({ from: new Date(oldDay).toISOString() }, { limit: 100 }));
      const fixes = page.data as GpsFix[];
      expect(fixes.map((f) => f.ts.getTime())).toEqual([at(today, 0, 4), at(today, 0, 3), at(today, 0, 2), at(today, 0, 1), at(oldDay, 9, 5), at(oldDay, 9)]);
      expect(new Set(fixes.map((f) => f.device_id))).toEqual(new Set([a.trackerId]));
      expect(fixes[0]).toMatchObject({ asset_id: a.assetId, lat: 52.6, lon: 13.6, speed_mps: 4 });

      const other = await asApi(a.id, (db) => createGpsEventRepository(db).list({ device_id: b.trackerId, from: new Date(oldDay).toISOString() }, {}));
      expect(other.data).toEqual([]);
    });

    it('pages with a cursor through compressed and uncompressed chunks', async () => {
      const seen: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await asApi(a.id, (db) => createGpsEventRepository(db).list({ from: new Date(oldDay).toISOString() }, { limit: 4, cursor }));
        seen.push(...(page.data as GpsFix[]).map((f) => f.ts.getTime()));
        cursor = page.meta.next_cursor ?? undefined;
      } while (cursor);
      expect(seen).toEqual([at(today, 0, 4), at(today, 0, 3), at(today, 0, 2), at(today, 0, 1), at(oldDay, 9, 5), at(oldDay, 9)]);
    });

    it('aggregates with bucket (time_bucket) per device and hour, compressed chunks included', async () => {
      const page = await asApi(a.id, (db) => createGpsEventRepository(db).list({ bucket: '1h', from: new Date(oldDay).toISOString() }, {}));
      const buckets = page.data as GpsBucket[];
      expect(buckets.map((row) => ({ bucket: row.bucket.getTime(), device: row.device_id, fixes: row.fixes, last: row.last_ts.getTime() }))).toEqual([
        { bucket: today, device: a.trackerId, fixes: 4, last: at(today, 0, 4) },
        { bucket: at(oldDay, 9), device: a.trackerId, fixes: 2, last: at(oldDay, 9, 5) },
      ]);
      expect(buckets[0]).toMatchObject({ lat: 52.6, lon: 13.6, avg_speed_mps: 4, max_speed_mps: 4 });
    });

    it('keeps the fixes inside a geofence of the tenant, and refuses another tenant’s fence', async () => {
      const page = await asApi(a.id, (db) => createGpsEventRepository(db).list({ geofence_id: fenceA, from: new Date(oldDay).toISOString() }, {}));
      expect((page.data as GpsFix[]).map((f) => f.ts.getTime())).toEqual([at(today, 0, 3), at(today, 0, 2), at(today, 0, 1), at(oldDay, 9, 5), at(oldDay, 9)]);
      await expect(asApi(b.id, (db) => createGpsEventRepository(db).list({ geofence_id: fenceA }, {}))).rejects.toMatchObject({ statusCode: 400 });
    });
  });

  describe('/v1/timesheets on TimescaleDB, as fieldops_api', () => {
    it("generates the tenant's timesheets from verified punches, a compressed day included", async () => {
      const page = await asApi(a.id, (db) => createTimesheetRepository(db).list({}, {}));
      expect(page.data.map((t) => ({ id: t.id, status: t.status, hours: t.hours, verified: t.verified, complete: t.complete, punches: t.punches.length })))
        .toEqual([
          { id: `${a.employeeId}_${isoDate(today)}`, status: 'pending', hours: 0.5, verified: true, complete: true, punches: 2 },
          { id: `${a.employeeId}_${isoDate(oldDay)}`, status: 'pending', hours: 8, verified: true, complete: true, punches: 2 },
        ]);
      expect(page.data[1]!.punches[0]).toMatchObject({ kind: 'in', site_id: fenceA, distance_m: 3, gps_verified: true });
    });

    it('records a decision on a compressed day, and finds no timesheet of another tenant', async () => {
      const id = `${a.employeeId}_${isoDate(oldDay)}`;
      const decided = await asApi(a.id, (db) => createTimesheetRepository(db).decide(id, 'approved', a.adminId, 'checked'));
      expect(decided).toMatchObject({ id, status: 'approved', note: 'checked', decided_by: a.adminId, hours: 8 });
      expect(await asApi(b.id, (db) => createTimesheetRepository(db).find(id))).toBeNull();
      expect(await asApi(b.id, (db) => createTimesheetRepository(db).decide(id, 'rejected', b.adminId, null))).toBeNull();
    });

    it("lists the tenant's punches with what verification found", async () => {
      const page = await asApi(b.id, (db) => createTimesheetRepository(db).listPunches({}, {}));
      expect(page.data.map((p) => ({ ts: p.ts.getTime(), employee: p.employee_id, device: p.device_id, verified: p.gps_verified }))).toEqual([
        { ts: at(today, 0, 10), employee: b.employeeId, device: b.clockId, verified: true },
        { ts: at(oldDay, 7), employee: b.employeeId, device: b.clockId, verified: true },
      ]);
    });
  });

  describe('/v1/events on TimescaleDB, as fieldops_api', () => {
    it("lists the tenant's events only", async () => {
      for (const tenant of [a, b]) {
        const page = await asApi(tenant.id, (db) => createEventRepository(db).list({}, {}));
        expect(page.data.map((e) => ({ event: e.event, tenant: e.tenant_id }))).toEqual([{ event: 'asset.geofence_entered', tenant: tenant.id }]);
      }
    });
  });
}
