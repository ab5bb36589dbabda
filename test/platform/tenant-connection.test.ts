import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readAsTenant, withTenant, type Queryable } from '../../services/shared/db.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';

/**
 * The tenant path of every API request (services/shared/db.ts) on a server, as the API's role: the
 * tenant travels with the statements (fewer round trips), row-level security sees exactly that tenant,
 * and a pooled connection hands nothing to its next user — after success, a failed statement, a
 * thrown error or a refused write. The pool has ONE connection, so every check runs where the
 * request ran.
 */
let db: TestDatabase;
let pool: pg.Pool;
let tenantA: TestOrg;
let tenantB: TestOrg;
/** ReadyForQuery messages seen on the pool's connection: one per round trip (one per Sync or simple query). */
let roundTrips = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ connectionString: db.config.serviceDatabaseUrls.api, max: 1 });
  pool.on('connect', (client) => {
    (client as unknown as { connection: NodeJS.EventEmitter }).connection.on('readyForQuery', () => roundTrips++);
  });
  tenantA = await createOrg(db.owner);
  tenantB = await createOrg(db.owner);
  for (const [tenant, names] of [[tenantA, ['a1', 'a2']], [tenantB, ['b1']]] as const) {
    await withTenant(db.owner, tenant.id, async (q) => {
      for (const name of names) await q.query('insert into clients (tenant_id, name) values ($1, $2)', [tenant.id, name]);
    });
  }
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

beforeEach(async () => {
  await expectClean();
  roundTrips = 0;
});

const clientNames = async (q: Queryable) => (await q.query<{ name: string }>('select name from clients order by name')).rows.map((r) => r.name);

/** The pool's one connection: no tenant, not read-only, no open transaction, and RLS shows it nothing. */
async function expectClean(): Promise<void> {
  const client = await pool.connect();
  try {
    const { rows } = await client.query<{ tenant: string | null; read_only: string; names: string[] | null }>(
      `select current_setting('app.tenant_id', true) as tenant, current_setting('transaction_read_only') as read_only,
              (select array_agg(name) from clients) as names`,
    );
    // Once set locally, the setting stays defined in the session as '' (its reset value).
    expect({ ...rows[0], tenant: rows[0]!.tenant || null }).toEqual({ tenant: null, read_only: 'off', names: null });
    expect((client as unknown as { getTransactionStatus(): string }).getTransactionStatus()).toBe('I');
  } finally {
    client.release();
  }
}

describe('readAsTenant', () => {
  it('reads one statement in one round trip, seeing its tenant only', async () => {
    expect(await readAsTenant(pool, tenantA.id, clientNames)).toEqual(['a1', 'a2']);
    expect(roundTrips).toBe(1);
    expect(await readAsTenant(pool, tenantB.id, clientNames)).toEqual(['b1']);
  });

  it('sets the tenant again for each statement: n statements, n round trips, prepared statements reused', async () => {
    const named = (q: Queryable) => q.query<{ n: number }>({ name: 'count_clients', text: 'select count(*)::int as n from clients' });
    const counts = await readAsTenant(pool, tenantA.id, async (q) => [(await named(q)).rows[0]!.n, (await named(q)).rows[0]!.n, (await clientNames(q)).length]);
    expect(counts).toEqual([2, 2, 2]);
    expect(roundTrips).toBe(3);
    // The prepared statement survives on the connection and serves the next tenant with its own rows.
    expect(await readAsTenant(pool, tenantB.id, async (q) => (await named(q)).rows[0]!.n)).toBe(1);
  });

  it('refuses a write: the server answers read-only, and nothing is written', async () => {
    const write = readAsTenant(pool, tenantA.id, (q) => q.query('insert into clients (tenant_id, name) values ($1, $2)', [tenantA.id, 'sneaky']));
    await expect(write).rejects.toMatchObject({ code: '25006' });
    expect(await readAsTenant(pool, tenantA.id, clientNames)).toEqual(['a1', 'a2']);
  });

  it('leaves nothing behind when a statement fails mid-request, and the connection serves the next request', async () => {
    const failing = readAsTenant(pool, tenantA.id, async (q) => {
      await clientNames(q);
      return q.query('select 1 / (select count(*) - 2 from clients)');
    });
    await expect(failing).rejects.toMatchObject({ code: '22012' });
    await expectClean();
    expect(await readAsTenant(pool, tenantB.id, clientNames)).toEqual(['b1']);
  });

  it('leaves nothing behind when the work throws between statements, or a named statement fails', async () => {
    await expect(readAsTenant(pool, tenantA.id, async (q) => {
      await clientNames(q);
      throw new Error('handler failed');
    })).rejects.toThrow('handler failed');
    await expectClean();
    const byDivisor = (q: Queryable, divisor: number) => q.query({ name: 'divide_clients', text: 'select count(*) / $1::int as n from clients', values: [divisor] });
    await expect(readAsTenant(pool, tenantA.id, (q) => byDivisor(q, 0))).rejects.toMatchObject({ code: '22012' });
    await expectClean();
    expect((await readAsTenant(pool, tenantA.id, (q) => byDivisor(q, 1))).rows).toEqual([{ n: '2' }]);
  });

  it('recovers from a failure in the statements sent ahead: the next request prepares what was skipped', async () => {
    // A NUL byte is refused when bound (22021): the tenant statement fails, the server skips the query.
    const named = (q: Queryable) => q.query<{ n: number }>({ name: 'count_clients_after_failure', text: 'select count(*)::int as n from clients' });
    await expect(readAsTenant(pool, 'no\u0000tenant', named)).rejects.toMatchObject({ code: '22021' });
    await expect(withTenant(pool, 'no\u0000tenant', named)).rejects.toMatchObject({ code: '22021' });
    await expectClean();
    expect((await readAsTenant(pool, tenantA.id, named)).rows).toEqual([{ n: 2 }]);
    expect((await withTenant(pool, tenantB.id, named)).rows).toEqual([{ n: 1 }]);
    // A statement that does not parse fails alone, and is not taken for prepared.
    const broken = (q: Queryable) => q.query({ name: 'broken_statement', text: 'select from where' });
    await expect(readAsTenant(pool, tenantA.id, broken)).rejects.toMatchObject({ code: '42601' });
    await expect(readAsTenant(pool, tenantA.id, broken)).rejects.toMatchObject({ code: '42601' });
    await expectClean();
    // Each statement is prepared once on the connection, the tenant's among them.
    const prepared = await pool.query<{ name: string }>('select name from pg_prepared_statements order by name');
    expect(prepared.rows.map((r) => r.name)).toEqual(expect.arrayContaining(['count_clients_after_failure', 'fieldops_read_as_tenant', 'fieldops_set_tenant']));
    expect(prepared.rows.map((r) => r.name)).not.toContain('broken_statement');
  });

  it('refuses malformed values before writing anything, and the connection goes on', async () => {
    await expect(readAsTenant(pool, tenantA.id, (q) => q.query({ text: 'select $1::int as n', values: 1 as unknown as unknown[] })))
      .rejects.toThrow('values must be an array');
    await expectClean();
    expect(await readAsTenant(pool, tenantA.id, clientNames)).toEqual(['a1', 'a2']);
  });

  it('refuses the connection once its request has ended', async () => {
    let kept: Queryable | null = null;
    await readAsTenant(pool, tenantA.id, async (q) => {
      kept = q;
    });
    expect(() => kept!.query('select 1')).toThrow('used after its request ended');
  });
});

describe('a connection that dies while a request holds it', () => {
  it('fails that request only; the pool replaces the connection, for reads and for transactions', async () => {
    for (const asTenant of [readAsTenant, withTenant]) {
      const failing = asTenant(pool, tenantA.id, async (q) => {
        const { rows } = await q.query<{ pid: number }>('select pg_backend_pid() as pid');
        await db.owner.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
        await new Promise((resolve) => setTimeout(resolve, 100));
        return clientNames(q);
      });
      await expect(failing).rejects.toThrow();
      expect(await asTenant(pool, tenantB.id, clientNames)).toEqual(['b1']);
      await expectClean();
    }
  });
});

describe('withTenant', () => {
  it('commits n statements in n + 1 round trips: begin and the tenant travel with the first', async () => {
    await withTenant(pool, tenantA.id, async (q) => {
      await q.query('insert into clients (tenant_id, name) values ($1, $2)', [tenantA.id, 'a3']);
      expect(await clientNames(q)).toEqual(['a1', 'a2', 'a3']);
    });
    expect(roundTrips).toBe(3);
    expect(await readAsTenant(pool, tenantA.id, clientNames)).toEqual(['a1', 'a2', 'a3']);
    await withTenant(pool, tenantA.id, (q) => q.query("delete from clients where name = 'a3'"));
  });

  it('rolls back everything when a statement fails mid-transaction, and leaves the connection clean', async () => {
    const failing = withTenant(pool, tenantA.id, async (q) => {
      await q.query('insert into clients (tenant_id, name) values ($1, $2)', [tenantA.id, 'lost']);
      await q.query('select 1 / 0');
    });
    await expect(failing).rejects.toMatchObject({ code: '22012' });
    await expectClean();
    expect(await readAsTenant(pool, tenantA.id, clientNames)).toEqual(['a1', 'a2']);
  });

  it('rolls back when the work throws after writing, and when the first statement itself fails', async () => {
    await expect(withTenant(pool, tenantA.id, async (q) => {
      await q.query('insert into clients (tenant_id, name) values ($1, $2)', [tenantA.id, 'lost']);
      throw new Error('handler failed');
    })).rejects.toThrow('handler failed');
    await expectClean();
    expect(await readAsTenant(pool, tenantA.id, clientNames)).toEqual(['a1', 'a2']);
    await expect(withTenant(pool, tenantA.id, (q) => q.query('insert into clients (tenant_id, name) values ($1, $2)', [tenantB.id, 'forged'])))
      .rejects.toMatchObject({ code: '42501' }); // row-level security: another tenant's row
    await expectClean();
    expect(await readAsTenant(pool, tenantB.id, clientNames)).toEqual(['b1']);
  });

  it('runs statements issued together in order, inside the transaction', async () => {
    const names = await withTenant(pool, tenantA.id, async (q) => {
      const [, , listed] = await Promise.all([
        q.query('insert into clients (tenant_id, name) values ($1, $2)', [tenantA.id, 'a4']),
        q.query('insert into clients (tenant_id, name) values ($1, $2)', [tenantA.id, 'a5']),
        clientNames(q),
      ]);
      await q.query("delete from clients where name in ('a4', 'a5')");
      return listed;
    });
    expect(names).toEqual(['a1', 'a2', 'a4', 'a5']);
    expect(await readAsTenant(pool, tenantA.id, clientNames)).toEqual(['a1', 'a2']);
  });

  it('queues begin and the tenant ahead of what it cannot send them with: a callback, a submittable', async () => {
    const counted = await withTenant(pool, tenantA.id, (q) => new Promise<number>((resolve, reject) => {
      q.query<{ n: number }>('select count(*)::int as n from clients', (err: Error | undefined, result: pg.QueryResult<{ n: number }>) => (err ? reject(err) : resolve(result.rows[0]!.n)));
    }));
    expect(counted).toBe(2);
    const streamed = await withTenant(pool, tenantB.id, (q) => new Promise<string[]>((resolve, reject) => {
      const names: string[] = [];
      const query = new pg.Query<{ name: string }>('select name from clients order by name');
      query.on('row', (row) => names.push(row.name));
      query.on('end', () => resolve(names));
      query.on('error', reject);
      q.query(query);
    }));
    expect(streamed).toEqual(['b1']);
    await expectClean();
    // Reads carry the tenant with each statement, so they take statements only.
    await expect(readAsTenant(pool, tenantA.id, async (q) => {
      q.query('select 1', () => {});
    })).rejects.toThrow('tenant reads take statements');
  });

  it('costs nothing when the work runs no statement', async () => {
    expect(await withTenant(pool, tenantA.id, async () => 'done')).toBe('done');
    expect(roundTrips).toBe(0);
  });
});
