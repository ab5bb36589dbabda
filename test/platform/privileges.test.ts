import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { loadConfig } from '../../services/shared/config.js';
import { migrate, MIGRATIONS_DIR } from '../../services/shared/migrate.js';
import { createTestDatabase, TEST_PG_URL, type TestDatabase } from '../support/database.js';
import {
  columnGrantsOnTimeSeries,
  extensionFunctionsExecutable,
  invariantViolations,
  privilegeState,
  servicePrivilegesOnTimeSeries,
} from '../support/schema-invariants.js';

/**
 * The plain-PostgreSQL branch of the migrations held to the same invariants as the TimescaleDB one
 * (test/timescale), and the privilege state that databases migrated by earlier releases converge to.
 */

/** Migration texts as released before 006 where they have changed since (001's extension guard, 004's column grant). */
const RELEASED_DIR = fileURLToPath(new URL('./released-migrations', import.meta.url));
/** The last migration of that release: the released set is every file up to it. */
const LAST_RELEASED = '005.realtime.sql';

let fresh: TestDatabase;
const legacyName = `fieldops_t_legacy_${randomBytes(4).toString('hex')}`;
const legacyUrl = new URL(TEST_PG_URL);
legacyUrl.pathname = `/${legacyName}`;
let legacy: pg.Pool;

/** A database as the release before 006 left it: every migration of that release applied by the runner. */
async function migrateAsReleased(): Promise<void> {
  const admin = new pg.Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  await admin.query(`create database ${pg.escapeIdentifier(legacyName)}`).finally(() => admin.end());
  const dir = mkdtempSync(join(tmpdir(), 'fieldops-released-'));
  for (const file of readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql') && f <= LAST_RELEASED)) {
    const released = join(RELEASED_DIR, file);
    copyFileSync(existsSync(released) ? released : join(MIGRATIONS_DIR, file), join(dir, file));
  }
  await runner({
    databaseUrl: legacyUrl.toString(),
    dir,
    migrationsTable: 'schema_migrations',
    direction: 'up',
    singleTransaction: true,
    checkOrder: true,
    log: () => {},
  });
}

beforeAll(async () => {
  fresh = await createTestDatabase();
  await migrateAsReleased();
  legacy = new pg.Pool({ connectionString: legacyUrl.toString(), max: 2 });
  legacy.on('error', () => {});
});

afterAll(async () => {
  await legacy?.end();
  await fresh?.drop();
  const admin = new pg.Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  await admin.query(`drop database if exists ${pg.escapeIdentifier(legacyName)} with (force)`).finally(() => admin.end());
});

describe('privileges on plain PostgreSQL', () => {
  it('holds every schema invariant: forced RLS, owning nothing, no column grants, no open security definers', async () => {
    expect(await invariantViolations(fresh.owner)).toEqual({});
  });

  it('gives the services exactly INSERT for ingest on the time-series tables, and no extension function', async () => {
    const { rows } = await fresh.owner.query<{ name: string }>('select name from time_series_tables order by name');
    expect(await servicePrivilegesOnTimeSeries(fresh.owner)).toEqual(rows.map((r) => `fieldops_ingest: INSERT on ${r.name}`));
    expect(await extensionFunctionsExecutable(fresh.owner)).toEqual([]);
  });

  it('brings a database migrated by the release before 006 to exactly the privilege state of a fresh one', async () => {
    // Where the released 004 left it: the worker held columns of punches.
    expect(await columnGrantsOnTimeSeries(legacy)).toEqual(expect.arrayContaining([
      'punches.id granted to fieldops_worker (SELECT)', 'punches.gps_verified granted to fieldops_worker (UPDATE)',
    ]));
    const config = loadConfig({ DATABASE_URL: legacyUrl.toString(), DATA_DIR: fresh.config.DATA_DIR, JWT_SECRET: 'x'.repeat(32) });
    const { applied } = await migrate(config);
    expect(applied[0]).toBe('006.timescale-privileges');
    expect(await privilegeState(legacy)).toEqual(await privilegeState(fresh.owner));
    expect(await invariantViolations(legacy)).toEqual({});
  });

  it('changes nothing when 006 runs again', async () => {
    const before = await privilegeState(fresh.owner);
    await fresh.owner.query(readFileSync(join(MIGRATIONS_DIR, '006.timescale-privileges.sql'), 'utf8'));
    expect(await privilegeState(fresh.owner)).toEqual(before);
  });
});
