import pg from 'pg';
import type { ServerConfig, ServiceDbRole } from './config.js';
import { timestamptzParser } from './timestamp-parser.js';
import { pipelines, SET_TENANT, SET_TENANT_READ_ONLY, TenantConnection } from './tenant-connection.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.PoolClient, 'query'>;

// Bigint columns (positions.id, counts) come back as strings: exact, and JSON-safe as ids.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => v);
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));
// The same Dates as pg's parser, a few times faster on the usual form (most of a list page's parsing).
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, timestamptzParser(pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ, 'text')));

/** Default of DATABASE_CONNECT_TIMEOUT_MS: a pool never waits without bound for a server that does not answer. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

export function createPool(connectionString: string, max: number, applicationName: string, connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): pg.Pool {
  const pool = new pg.Pool({
    connectionString, max, application_name: applicationName, idleTimeoutMillis: 30_000, connectionTimeoutMillis: connectTimeoutMs,
  });
  hearConnectionErrors(pool);
  return pool;
}

/**
 * A connection dying (the server restarting, the network cut) makes its client emit `error`, once or twice.
 * Idle in the pool, the pool hears it and replaces the client; checked out, nobody does unless its holder
 * listens — and an `error` event nobody hears ends the process (found by the PostgreSQL restart drill, a
 * geofence process between two statements). So every client listens from its first connect: its holder's next
 * statement fails instead, and a holder that releases it with the error has it dropped, not reused.
 */
export function hearConnectionErrors(pool: pg.Pool): void {
  pool.on('error', () => {});
  pool.on('connect', (client) => { client.on('error', () => {}); });
}

/** A service role's pool on the server (tests and benches; the roles ask `runtime.pool`, which knows the embedded path too). */
export function createServicePool(config: ServerConfig, role: ServiceDbRole, max = config.DATABASE_POOL_SIZE): pg.Pool {
  return createPool(config.serviceDatabaseUrls[role], max, `fieldops-${role}`, config.DATABASE_CONNECT_TIMEOUT_MS);
}

/**
 * Sets the tenant of the current transaction (docs/design.md, "Data and tenancy"): row-level security and the time-series
 * views see that tenant only. Bound, never concatenated; local to the transaction, so a pooled connection
 * carries nothing to its next user. Prepared once per connection.
 */
export async function setTenant(db: Queryable, tenantId: string): Promise<void> {
  await db.query({ name: 'fieldops_set_tenant', text: SET_TENANT, values: [tenantId] });
}

/**
 * Runs `work` in one transaction on one pooled connection, with the tenant set. On a server the
 * `begin` and the tenant travel with the first statement (one round trip for all three).
 */
export function withTenant<T>(pool: pg.Pool, tenantId: string, work: (db: Queryable) => Promise<T>): Promise<T> {
  return onTenantConnection(pool, tenantId, 'transaction', work, async (db) => {
    await setTenant(db, tenantId);
    return work(db);
  });
}

/**
 * Runs read-only `work` on one pooled connection as the tenant. On a server each statement is its own
 * transaction that sets the tenant and read-only in the same round trip: a one-statement read costs
 * one round trip. Statements see what was committed when each began (as in a read-committed
 * transaction); a write fails. Elsewhere (the embedded database), one read-only transaction.
 */
export function readAsTenant<T>(pool: pg.Pool, tenantId: string, work: (db: Queryable) => Promise<T>): Promise<T> {
  return onTenantConnection(pool, tenantId, 'reads', work, async (db) => {
    await db.query(SET_TENANT_READ_ONLY, [tenantId]);
    return work(db);
  });
}

async function onTenantConnection<T>(
  pool: pg.Pool, tenantId: string, mode: 'transaction' | 'reads',
  work: (db: Queryable) => Promise<T>, inPlainTransaction: (db: PoolClient) => Promise<T>,
): Promise<T> {
  return holdConnection(pool, async (client, drop) => {
    if (!pipelines(client)) return inTransaction(client, () => inPlainTransaction(client));
    const db = new TenantConnection(client, mode, tenantId);
    try {
      const result = await work(db);
      await db.commit();
      return result;
    } catch (err) {
      // A transaction that could not be rolled back must not be handed to the pool's next user.
      if (!(await db.rollback())) drop(err);
      throw err;
    }
  });
}

export function withTransaction<T>(pool: pg.Pool, work: (db: PoolClient) => Promise<T>): Promise<T> {
  return holdConnection(pool, (db) => inTransaction(db, () => work(db)));
}

/**
 * Holds a pooled connection for `use`, then releases it — or drops it when it may be unsound: it broke
 * while held, `use` failed for want of the database (but for a statement or lock timeout, which leaves
 * the connection sound), or `use` called `drop`.
 */
async function holdConnection<T>(pool: pg.Pool, use: (db: PoolClient, drop: (reason: unknown) => void) => Promise<T>): Promise<T> {
  const db = await pool.connect();
  // A connection that dies between two statements (the server restarting, the network cut) is noted here,
  // so that the client is dropped on release, not reused (see hearConnectionErrors).
  let broken: Error | undefined;
  const drop = (reason: unknown) => { broken ??= reason instanceof Error ? reason : new Error(String(reason)); };
  db.on('error', drop);
  try {
    return await use(db, drop);
  } catch (err) {
    if (isDatabaseUnavailable(err) && !['57014', '55P03'].includes(pgErrorCode(err) ?? '')) drop(err);
    throw err;
  } finally {
    db.off('error', drop);
    db.release(broken);
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

/**
 * Whether a failure says the database cannot serve now rather than that the request was wrong: a
 * statement or lock timeout (the service roles' `statement_timeout`, migration 011), the server shutting
 * down, starting or out of connections, or no connection at all (refused, reset, the pool's connect
 * timeout). The API answers these 503 `unavailable`, and the client retries.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const code = pgErrorCode(err);
  if (code && (UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08'))) return true;
  if (code && UNREACHABLE_ERRNOS.has(code)) return true;
  if (err instanceof AggregateError) return err.errors.some(isDatabaseUnavailable);
  const message = err instanceof Error ? err.message : '';
  return /timeout exceeded when trying to connect|Connection terminated|connection is closed|Client has encountered a connection error/i.test(message);
}

// query_canceled (statement_timeout), lock_not_available, idle_in_transaction_session_timeout,
// admin/crash shutdown, cannot_connect_now, too_many_connections, insufficient_resources.
const UNAVAILABLE_SQLSTATES = new Set(['57014', '55P03', '25P03', '57P01', '57P02', '57P03', '53300', '53000']);
const UNREACHABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT']);

export function pgErrorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}
