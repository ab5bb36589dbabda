import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import type { Config } from './config.js';
import { SERVICE_DB_ROLES } from './config.js';
import type { Database } from './database.js';
import type { Logger } from './log.js';

export const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../migrations').replace(/[\\/]dist[\\/]migrations$/, '/migrations');

export interface MigrateResult {
  applied: string[];
}

/**
 * Applies pending `migrations/*.sql` as the owner (node-pg-migrate: recorded in the
 * `schema_migrations` table, all pending ones in one transaction, an advisory lock so that two
 * processes migrating at once take turns). On a server (DATABASE_URL) it creates the database first
 * when it does not exist; the embedded database (`database`) takes the same migrations unchanged.
 */
export async function migrate(config: Config, log?: Logger, database?: Database): Promise<MigrateResult> {
  const owner = database?.kind === 'embedded' ? database.ownerClient() : null;
  if (owner) await owner.connect();
  else if (config.DATABASE_URL) await ensureDatabase(config.DATABASE_URL);
  else throw new Error('migrate: no DATABASE_URL and no embedded database given');
  try {
    return await applyMigrations(config, owner, log);
  } finally {
    await owner?.end();
  }
}

async function applyMigrations(config: Config, owner: pg.Client | null, log?: Logger): Promise<MigrateResult> {
  const applied = await runner({
    ...(owner ? { dbClient: owner } : { databaseUrl: config.DATABASE_URL! }),
    dir: MIGRATIONS_DIR,
    migrationsTable: 'schema_migrations',
    direction: 'up',
    singleTransaction: true,
    advisoryLockMode: 'wait',
    checkOrder: true,
    log: () => {},
    logger: { info: () => {}, warn: (m: string) => log?.warn(m), error: (m: string) => log?.error(m), debug: () => {} },
  });
  if (!owner && config.DATABASE_SERVICE_PASSWORD && !config.DATABASE_SERVICE_URL) await setServicePasswords(config);
  const names = applied.map((m) => m.name);
  log?.info({ applied: names }, names.length ? 'migrations applied' : 'database is up to date');
  return { applied: names };
}

async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const database = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [database]);
    if (!rowCount) {
      await admin.query(`create database ${pg.escapeIdentifier(database)}`).catch((err: { code?: string }) => {
        // Created meanwhile by another process: duplicate_database, or the catalog's unique index.
        if (err.code !== '42P04' && err.code !== '23505') throw err;
      });
    }
  } finally {
    await admin.end();
  }
}

async function setServicePasswords(config: Config): Promise<void> {
  const client = new pg.Client({ connectionString: config.DATABASE_URL });
  await client.connect();
  try {
    for (const role of Object.values(SERVICE_DB_ROLES)) {
      await client.query(`alter role ${pg.escapeIdentifier(role)} password ${pg.escapeLiteral(config.DATABASE_SERVICE_PASSWORD!)}`);
    }
  } finally {
    await client.end();
  }
}
