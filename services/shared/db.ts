import pg from 'pg';
import type { ServerConfig, ServiceDbRole } from './config.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.PoolClient, 'query'>;

// Bigint columns (positions.id, counts) come back as strings: exact, and JSON-safe as ids.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => v);
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));

export function createPool(connectionString: string, max: number, applicationName: string): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, application_name: applicationName, idleTimeoutMillis: 30_000 });
  // An idle client's connection dying (database restart) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  return pool;
}

/** A service role's pool on the server (tests and benches; the roles ask `runtime.pool`, which knows the embedded path too). */
export function createServicePool(config: ServerConfig, role: ServiceDbRole, max = config.DATABASE_POOL_SIZE): pg.Pool {
  return createPool(config.serviceDatabaseUrls[role], max, `fieldops-${role}`);
}

/**
 * Sets the tenant of the current transaction (docs/design.md, "Data and tenancy"): row-level security and the time-series
 * views see that tenant only. Bound, never concatenated; local to the transaction, so a pooled connection
 * carries nothing to its next user. Prepared once per connection, since every request runs it.
 */
export async function setTenant(db: Queryable, tenantId: string): Promise<void> {
  await db.query({ name: 'fieldops_set_tenant', text: "select set_config('app.tenant_id', $1, true)", values: [tenantId] });
}

/** Runs `work` in one transaction on one pooled connection, with the tenant set. */
export async function withTenant<T>(pool: pg.Pool, tenantId: string, work: (db: PoolClient) => Promise<T>): Promise<T> {
  return withTransaction(pool, async (db) => {
    await setTenant(db, tenantId);
    return work(db);
  });
}

export async function withTransaction<T>(pool: pg.Pool, work: (db: PoolClient) => Promise<T>): Promise<T> {
  const db = await pool.connect();
  try {
    return await inTransaction(db, () => work(db));
  } finally {
    db.release();
  }
}

/** `begin`, `work`, `commit` on a connection the caller holds (`rollback` when `work` throws). */
export async function inTransaction<T>(db: Queryable, work: () => Promise<T>): Promise<T> {
  await db.query('begin');
  try {
    const result = await work();
    await db.query('commit');
    return result;
  } catch (err) {
    await db.query('rollback').catch(() => {});
    throw err;
  }
}

/** PostgreSQL error codes we answer to, so callers compare names rather than magic strings. */
export const PgError = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  checkViolation: '23514',
  invalidTextRepresentation: '22P02',
} as const;

export function pgErrorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}
