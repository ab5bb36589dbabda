import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../../services/shared/config.js';
import { migrate } from '../../services/shared/migrate.js';
import { TEST_PG_URL } from '../support/database.js';

const name = `fieldops_t_migrate_${randomBytes(4).toString('hex')}`;
const url = new URL(TEST_PG_URL);
url.pathname = `/${name}`;
const config = loadConfig({ DATABASE_URL: url.toString(), DATA_DIR: '/tmp/fieldops-migrate-test', JWT_SECRET: 'x'.repeat(32) });

async function query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], connectionString = config.DATABASE_URL): Promise<T[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe('fieldops migrate', () => {
  afterAll(async () => {
    await query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`, [], TEST_PG_URL);
  });

  it('creates the database and applies every migration from empty, twice at once, each once', async () => {
    const [first, second] = await Promise.all([migrate(config), migrate(config)]);
    const applied = [...first.applied, ...second.applied].sort();
    const recorded = await query<{ name: string }>('select name from schema_migrations order by run_on, id');
    expect(recorded.length).toBeGreaterThan(0);
    expect(applied).toEqual(recorded.map((r) => r.name).sort());
  });

  it('is idempotent: a second run applies nothing and changes nothing', async () => {
    const before = await query<{ n: string }>('select count(*) as n from schema_migrations');
    const { applied } = await migrate(config);
    expect(applied).toEqual([]);
    expect(await query('select count(*) as n from schema_migrations')).toEqual(before);
  });

  it('forces row-level security on every tenant table', async () => {
    const rows = await query<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }>(
      `select c.relname, c.relrowsecurity, c.relforcerowsecurity from pg_class c
        join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id'
       where c.relkind = 'r' and c.relnamespace = 'public'::regnamespace and not c.relispartition
         and c.relname not in ('positions', 'punches') and c.relname not like '%\\_p________' and c.relname not like '%\\_default'`);
    expect(rows.length).toBeGreaterThanOrEqual(8);
    for (const row of rows) expect(row, row.relname).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true });
  });

  it('creates service roles that are not superusers and cannot bypass row-level security', async () => {
    const roles = await query<{ rolname: string; rolsuper: boolean; rolbypassrls: boolean }>(
      `select rolname, rolsuper, rolbypassrls from pg_roles where rolname like 'fieldops\\_%' order by rolname`);
    expect(roles.map((r) => r.rolname)).toEqual(expect.arrayContaining(['fieldops_api', 'fieldops_ingest', 'fieldops_worker']));
    for (const role of roles) expect(role).toMatchObject({ rolsuper: false, rolbypassrls: false });
  });

  it('partitions the time series by day on plain PostgreSQL, with a default partition', async () => {
    const parts = await query<{ relname: string }>(
      `select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'positions'::regclass order by 1`);
    const today = new Date().toISOString().slice(0, 10).replaceAll('-', '');
    expect(parts.map((p) => p.relname)).toEqual(expect.arrayContaining(['positions_default', `positions_p${today}`]));
  });

  it('lets the ingest role only insert into positions, never read them', async () => {
    const ingest = config.serviceDatabaseUrls!.ingest;
    await expect(query('select * from positions limit 1', [], ingest)).rejects.toThrow(/permission denied/);
    await expect(query('select name from devices limit 1', [], ingest)).rejects.toThrow(/permission denied/);
    await expect(query('select * from users limit 1', [], ingest)).rejects.toThrow(/permission denied/);
  });
});
