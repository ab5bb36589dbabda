import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { loadConfig } from '../../services/shared/config.js';
import { migrate, MIGRATIONS_DIR } from '../../services/shared/migrate.js';
import { startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';
import { invariantViolations, migrationNames } from '../support/schema-invariants.js';

/**
 * A server with TimescaleDB's files installed but its library not preloaded: there `create extension
 * timescaledb` ends the connection (`FATAL: extension "timescaledb" must be preloaded`), so the
 * migrations must take the plain path. No TimescaleDB build for this machine's PostgreSQL can be had
 * here, so a stand-in extension of that name plays the part: installed files, and a creation that
 * ends the connection with a FATAL, as the real loader's does.
 */
const STAND_IN = {
  'timescaledb.control': "comment = 'stand-in: TimescaleDB installed, its library not preloaded'\ndefault_version = '2.28.3'\nsuperuser = true\n",
  'timescaledb--2.28.3.sql': '-- Creating it ends the connection with a FATAL, as the real loader does without preload.\nselect pg_terminate_backend(pg_backend_pid());\n',
};

const RELEASED_DIR = fileURLToPath(new URL('./released-migrations', import.meta.url));
const LAST_RELEASED = '005.realtime.sql';

let server: PrivatePostgres;

beforeAll(async () => {
  server = await startPrivatePostgres(STAND_IN);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

async function query<T extends pg.QueryResultRow>(database: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: server.url(database) });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('the extension guard on a server with TimescaleDB installed but not preloaded', () => {
  it('lists the extension as available, so a check of the files alone would choose it', async () => {
    expect(await query('postgres', `select name from pg_available_extensions where name = 'timescaledb'`)).toEqual([{ name: 'timescaledb' }]);
  });

  it('lost the connection with the released 001 (the failure this guard fixes)', async () => {
    await query('postgres', 'create database released');
    const dir = mkdtempSync(join(tmpdir(), 'fieldops-released-'));
    for (const file of readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql') && f <= LAST_RELEASED)) {
      const released = join(RELEASED_DIR, file);
      copyFileSync(existsSync(released) ? released : join(MIGRATIONS_DIR, file), join(dir, file));
    }
    // Our own client, so that the dying connection's error event is heard (the runner's own would crash the process).
    const dbClient = new pg.Client({ connectionString: server.url('released') });
    const lost = new Promise<Error>((resolve) => dbClient.once('error', resolve));
    await dbClient.connect();
    await expect(runner({ dbClient, dir, migrationsTable: 'schema_migrations', direction: 'up', singleTransaction: true, log: () => {} }))
      .rejects.toThrow(/terminat/i);
    expect((await lost).message).toMatch(/terminated unexpectedly/);
    await dbClient.end().catch(() => {});
    expect(await query('released', `select to_regclass('organizations') as table`)).toEqual([{ table: null }]);
  });

  it('takes the plain path there: fieldops migrate applies every migration, without the extension', async () => {
    const config = loadConfig({ DATABASE_URL: server.url('fieldops'), DATA_DIR: tmpdir(), JWT_SECRET: 'x'.repeat(32) });
    const { applied } = await migrate(config);
    expect(applied).toEqual(migrationNames());
    expect(await query('fieldops', `select extname from pg_extension where extname = 'timescaledb'`)).toEqual([]);
    expect(await query('fieldops', `select relname, relkind from pg_class where relname in ('positions', 'punches') order by 1`))
      .toEqual([{ relname: 'positions', relkind: 'p' }, { relname: 'punches', relkind: 'p' }]);
    const client = new pg.Client({ connectionString: server.url('fieldops') });
    await client.connect();
    try {
      expect(await invariantViolations(client)).toEqual({});
    } finally {
      await client.end();
    }
  });
});
