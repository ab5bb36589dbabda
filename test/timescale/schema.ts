import { beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { PoolClient } from '../../services/shared/db.js';
import { createDevice, createOrg } from '../support/factories.js';
import {
  extensionFunctionsExecutable,
  invariantViolations,
  migrationNames,
  servicePrivilegesOnTimeSeries,
} from '../support/schema-invariants.js';
import { asService, withOwner, type TimescaleDatabase } from '../support/timescale.js';

/**
 * The TimescaleDB branch of the migrations (docs/design.md, "Data and tenancy"): every migration
 * applied from empty, the hypertables and their policies, the schema invariants, and what each service
 * role can and cannot do on the time series, rows in compressed chunks included.
 */
export function describeMigrations(database: () => TimescaleDatabase): void {
  const owner = <T>(work: (db: PoolClient) => Promise<T>) => withOwner(database(), work);

  const deniedOn = (table: string) => new RegExp(`permission denied for (table|view|relation) ${table}`);

  describe('fieldops migrate on TimescaleDB', () => {
    it('applies every migration in migrations/ from empty, creating the extension', async () => {
      expect(database().migrated.applied).toEqual(migrationNames());
      await owner(async (db) => {
        const { rows } = await db.query<{ name: string }>('select name from schema_migrations order by id');
        expect(rows.map((r) => r.name)).toEqual(migrationNames());
        const { rows: ext } = await db.query(`select extversion from pg_extension where extname = 'timescaledb'`);
        expect(ext).toHaveLength(1);
      });
    });

    it('makes every time-series table a hypertable with compression, a compression policy and its retention policy', async () => {
      await owner(async (db) => {
        const { rows } = await db.query<{
          name: string; hypertable: boolean; compressed: boolean; segmentby: string[] | null; compress_after: string | null; drop_after: boolean;
        }>(`
          select t.name,
                 h.hypertable_name is not null as hypertable,
                 coalesce(h.compression_enabled, false) as compressed,
                 (select array_agg(s.attname::text order by s.segmentby_column_index) from timescaledb_information.compression_settings s
                   where s.hypertable_schema = 'public' and s.hypertable_name = t.name and s.segmentby_column_index is not null) as segmentby,
                 (select j.config->>'compress_after' from timescaledb_information.jobs j
                   where j.proc_name = 'policy_compression' and j.hypertable_schema = 'public' and j.hypertable_name = t.name) as compress_after,
                 exists (select from timescaledb_information.jobs j
                          where j.proc_name = 'policy_retention' and j.hypertable_schema = 'public' and j.hypertable_name = t.name
                            and (j.config->>'drop_after')::interval = t.retention) as drop_after
            from time_series_tables t
            left join timescaledb_information.hypertables h on h.hypertable_schema = 'public' and h.hypertable_name = t.name
           order by t.name`);
        expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(['positions', 'punches']));
        for (const row of rows) {
          expect(row, row.name).toMatchObject({ hypertable: true, compressed: true, drop_after: true });
          // Segmented by tenant first: a tenant's compressed rows are read without decompressing others'.
          expect(row.segmentby?.[0], row.name).toBe('tenant_id');
          expect(row.compress_after, row.name).not.toBeNull();
        }
      });
    });

    it('holds every schema invariant: forced RLS, owning nothing, no column grants, no open security definers', async () => {
      await owner(async (db) => {
        expect(await invariantViolations(db)).toEqual({});
      });
    });

    it('gives the services exactly INSERT for ingest on the time-series tables, nothing else', async () => {
      await owner(async (db) => {
        const { rows } = await db.query<{ name: string }>('select name from time_series_tables order by name');
        expect(await servicePrivilegesOnTimeSeries(db)).toEqual(rows.map((r) => `fieldops_ingest: INSERT on ${r.name}`));
      });
    });

    it('refuses a column-level grant on a compressed hypertable, as the released 004 met on TimescaleDB 2.28', async () => {
      await owner(async (db) => {
        await db.query('begin');
        try {
          await expect(db.query('grant select (id, ts) on punches to fieldops_worker'))
            .rejects.toThrow(/column "id" of relation "_compressed_hypertable_\d+" does not exist/);
        } finally {
          await db.query('rollback');
        }
      });
    });

    it("gives back of TimescaleDB's functions exactly what the API's queries call: time_bucket on timestamptz", async () => {
      await owner(async (db) => {
        expect(await extensionFunctionsExecutable(db)).toEqual(['fieldops_api: time_bucket(interval,timestamp with time zone)']);
      });
    });
  });

  describe('the service roles on the time series (DESIGN section 8)', () => {
    const day = 86_400_000;
    const today = Math.floor(Date.now() / day) * day; // whole UTC days: one chunk each
    const hour = 3_600_000;
    let tenantA: string;
    let tenantB: string;
    let deviceA: string;
    let deviceB: string;

    beforeAll(async () => {
      tenantA = (await createOrg(database().owner)).id;
      tenantB = (await createOrg(database().owner)).id;
      deviceA = (await createDevice(database().owner, tenantA)).id;
      deviceB = (await createDevice(database().owner, tenantB)).id;
      // Ingest writes both tenants' fixes and punches: today's, and 45 days old, which the compression
      // policies then compress (positions after 7 days, punches after 30).
      await owner((db) => asService(db, 'ingest', null, async () => {
        for (const [tenant, device] of [[tenantA, deviceA], [tenantB, deviceB]] as const) {
          for (const ts of [today - 45 * day + hour, today - 45 * day + 2 * hour, today + hour, today + 2 * hour]) {
            await db.query('insert into positions (tenant_id, device_id, ts, lat, lon) values ($1, $2, $3, 52.5, 13.4)', [tenant, device, new Date(ts)]);
            await db.query(`insert into punches (tenant_id, device_id, ts, employee_ref, kind) values ($1, $2, $3, 'badge-7', 'in')`, [tenant, device, new Date(ts)]);
          }
        }
      }, { commit: true }));
      await owner(async (db) => {
        const { rows: jobs } = await db.query<{ job_id: number }>(
          `select job_id from timescaledb_information.jobs where proc_name = 'policy_compression' order by job_id`);
        for (const { job_id } of jobs) await db.query(`call run_job(${Number(job_id)})`);
      });
    }, 120_000);

    it('compressed the old chunks of both time series', async () => {
      await owner(async (db) => {
        const { rows } = await db.query<{ hypertable_name: string; compressed: string; plain: string }>(`
          select hypertable_name, count(*) filter (where is_compressed) as compressed, count(*) filter (where not is_compressed) as plain
            from timescaledb_information.chunks where hypertable_name in ('positions', 'punches') group by 1 order by 1`);
        expect(rows).toEqual([
          { hypertable_name: 'positions', compressed: '1', plain: '1' },
          { hypertable_name: 'punches', compressed: '1', plain: '1' },
        ]);
      });
    });

    it('denies the API role the base tables and shows it its own tenant through the views, compressed rows included', async () => {
      await owner(async (db) => {
        for (const table of ['positions', 'punches']) {
          await expect(asService(db, 'api', tenantA, () => db.query(`select count(*) from ${table}`))).rejects.toThrow(deniedOn(table));
        }
        const seen = await asService(db, 'api', tenantA, async () => (await db.query<{ view: string; tenant_id: string; ts: Date }>(`
          select 'positions_v' as view, tenant_id, ts from positions_v union all select 'punches_v', tenant_id, ts from punches_v order by 1, 3`)).rows);
        expect(seen).toHaveLength(8);
        expect(new Set(seen.map((r) => r.tenant_id))).toEqual(new Set([tenantA]));
        expect(seen.filter((r) => r.ts.getTime() < today - 30 * day)).toHaveLength(4); // the compressed ones
        // No tenant set: nothing, rather than an error.
        const unset = await asService(db, 'api', null, async () => (await db.query('select count(*)::int as n from positions_v')).rows[0]);
        expect(unset).toEqual({ n: 0 });
      });
    });

    it('lets the ingest role insert into the time series and read nothing but device credentials', async () => {
      await owner(async (db) => {
        for (const table of ['positions', 'punches', 'positions_v', 'punches_v', 'events', 'users']) {
          await expect(asService(db, 'ingest', tenantA, () => db.query(`select count(*) from ${table}`))).rejects.toThrow(deniedOn(table));
        }
        await expect(asService(db, 'ingest', null, () => db.query('select name from devices'))).rejects.toThrow(deniedOn('devices'));
        await expect(asService(db, 'ingest', null, () => db.query('update punches set kind = $1', ['out']))).rejects.toThrow(deniedOn('punches'));
        await expect(asService(db, 'ingest', null, () => db.query('delete from positions'))).rejects.toThrow(deniedOn('positions'));
        const credentials = await asService(db, 'ingest', null, async () =>
          (await db.query('select id, tenant_id from devices where id = $1', [deviceA])).rows);
        expect(credentials).toEqual([{ id: deviceA, tenant_id: tenantA }]);
        // A fix for a day with no chunk yet: the ingest role's insert creates the chunk.
        const inserted = await asService(db, 'ingest', null, async () => (await db.query(
          'insert into positions (tenant_id, device_id, ts, lat, lon) values ($1, $2, $3, 0, 0)', [tenantA, deviceA, new Date(today + 3 * day)])).rowCount);
        expect(inserted).toBe(1);
      });
    });

    it('lets the worker record punch verifications, compressed chunks included, and nothing else of the time series', async () => {
      await owner(async (db) => {
        for (const table of ['positions', 'punches']) {
          await expect(asService(db, 'worker', null, () => db.query(`select id from ${table}`))).rejects.toThrow(deniedOn(table));
        }
        await expect(asService(db, 'worker', null, () => db.query('update punches set gps_verified = true'))).rejects.toThrow(deniedOn('punches'));
        await expect(asService(db, 'worker', tenantA, () => db.query('select id from punches_v'))).rejects.toThrow(deniedOn('punches_v'));

        const { rows: punches } = await db.query<{ id: string; ts: Date }>('select id, ts from punches where tenant_id = $1 order by ts', [tenantA]);
        const employee = randomUUID();
        const recorded = await asService(db, 'worker', null, async () => (await db.query<{ n: number }>(
          'select record_punch_verifications($1::bigint[], $2::timestamptz[], $3::uuid[], $4::boolean[], $5::uuid[], $6::real[]) as n',
          [punches.map((p) => p.id), punches.map((p) => p.ts), punches.map(() => employee), punches.map(() => true), punches.map(() => null),
            punches.map(() => 12.5)])).rows[0]!.n, { commit: true });
        expect(recorded).toBe(punches.length);
        const { rows } = await db.query('select employee_id, gps_verified, distance_m, verified_at is not null as verified from punches where tenant_id = $1', [tenantA]);
        expect(rows).toEqual(punches.map(() => ({ employee_id: employee, gps_verified: true, distance_m: 12.5, verified: true })));
      });
    });
  });
}
