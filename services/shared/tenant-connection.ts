import pg from 'pg';
import { PipelinedStatement, type LeadingStatement } from './pipelined-statement.js';

/** The query method of a pooled connection: what repositories and the request's work are given. */
type QueryMethod = pg.PoolClient['query'];

/**
 * A pooled connection that writes what the tenant needs in the same round trip as the next statement
 * (docs/design.md, "Cost of a request"):
 *
 * - `transaction`: `begin` and the tenant go ahead of the first statement; the caller ends with
 *   `commit()` or `rollback()` — a transaction of n statements costs n + 1 round trips instead of n + 3.
 * - `reads`: every statement runs alone in an implicit transaction (one extended-protocol Sync) that
 *   first sets the tenant and read-only, both local: one round trip per statement, and nothing is
 *   left behind on the connection after it, error or not. A write is refused by the server.
 *
 * Only pg's own client speaks the protocol this needs; `pipelines(client)` says whether a client can.
 */
export class TenantConnection {
  private leading: LeadingStatement[] | null;
  private readonly inFlight = new Set<Promise<unknown>>();
  private begun = false;
  private closed = false;

  constructor(private readonly client: pg.PoolClient, private readonly mode: 'transaction' | 'reads', private readonly tenantId: string) {
    this.leading = mode === 'transaction' ? [{ text: 'begin' }, { name: 'fieldops_set_tenant', text: SET_TENANT, values: [tenantId] }] : null;
  }

  readonly query = ((...args: unknown[]) => {
    if (this.closed) throw new Error('the tenant connection was used after its request ended');
    const [first, values] = args;
    const config = statementConfig(first, values, args.length);
    if (this.mode === 'reads') {
      if (!config) throw new Error('tenant reads take statements (text or config) only: cursors, streams and callbacks need a transaction');
      return this.track(this.pipelined([{ name: 'fieldops_read_as_tenant', text: SET_TENANT_READ_ONLY, values: [this.tenantId] }], config));
    }
    const leading = this.leading;
    this.leading = null;
    if (!leading) return this.track((this.client.query as (...a: unknown[]) => unknown)(...args));
    this.begun = true;
    if (config) return this.track(this.pipelined(leading, config));
    // A stream, a cursor or a callback: the leading statements are queued ahead of it on the connection.
    for (const { text, values: bound } of leading) this.client.query(text, bound).catch(() => {});
    return this.track((this.client.query as (...a: unknown[]) => unknown)(...args));
  }) as QueryMethod;

  /** Commits what the transaction began, once the statements still running are done. */
  async commit(): Promise<void> {
    if (await this.close()) await this.client.query('commit');
  }

  /** Rolls back what the transaction began; false when that failed, so the connection's state is unknown. */
  async rollback(): Promise<boolean> {
    if (!(await this.close())) return true;
    return this.client.query('rollback').then(() => true, () => false);
  }

  /** Ends the request's use: later statements are refused. True when a transaction was begun. */
  private async close(): Promise<boolean> {
    this.closed = true;
    // Usually nothing is left running by now: no promise to wait on then.
    if (this.inFlight.size > 0) await Promise.allSettled(this.inFlight);
    return this.begun;
  }

  private pipelined(leading: LeadingStatement[], config: pg.QueryConfig): Promise<pg.QueryResult> {
    const statement = new PipelinedStatement(leading, config);
    this.client.query(statement);
    return statement.result;
  }

  private track<T>(result: T): T {
    if (result instanceof Promise) {
      const settled = result.then(() => {}, () => {});
      this.inFlight.add(settled);
      void settled.then(() => this.inFlight.delete(settled));
    }
    return result;
  }
}

/** Bound, never concatenated; local to the transaction (docs/design.md, "Data and tenancy"). */
export const SET_TENANT = "select set_config('app.tenant_id', $1, true)";
/** The same, and the transaction read-only: a read path that tried to write would fail, not half-commit. */
export const SET_TENANT_READ_ONLY = "select set_config('app.tenant_id', $1, true), set_config('transaction_read_only', 'on', true)";

/** Whether `client` is pg's own (its protocol hooks are what PipelinedStatement relies on). */
export function pipelines(client: pg.ClientBase): boolean {
  const connection = (client as unknown as { connection?: { parsedStatements?: unknown } }).connection;
  return client.constructor === pg.Client && typeof connection?.parsedStatements === 'object';
}

/** `(text, values?)` or `(config)` as one config; null for streams, cursors and callbacks. */
function statementConfig(first: unknown, values: unknown, argCount: number): pg.QueryConfig | null {
  if (argCount > 2 || typeof values === 'function') return null;
  if (typeof first === 'string') return { text: first, ...(values !== undefined ? { values: values as unknown[] } : {}) };
  if (typeof first !== 'object' || first === null || typeof (first as { submit?: unknown }).submit === 'function') return null;
  const config = first as pg.QueryConfig & { callback?: unknown; rowMode?: unknown };
  if (typeof config.text !== 'string' || config.callback) return null;
  return values !== undefined ? { ...config, values: values as unknown[] } : config;
}
