import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildTestApi, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createDevice, createOrg, type TestOrg } from '../support/factories.js';

/**
 * Isolation proven by the database itself, as the API's service role (`fieldops_api`): what the API
 * code does not filter, row-level security and the time-series views still do.
 */
let db: TestDatabase;
let api: TestApi;
let service: pg.Pool;
let tenantA: TestOrg;
let tenantB: TestOrg;

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config);
  service = new pg.Pool({ connectionString: db.config.serviceDatabaseUrls.api, max: 2 });
  tenantA = await createOrg(db.owner, 'unlimited');
  tenantB = await createOrg(db.owner, 'unlimited');

  // Tenant A's data is made through the API: a user, an API key, a device.
  const token = await login(api, tenantA);
  const headers = bearer(token);
  expect((await api.sut.inject({ method: 'POST', url: '/v1/users', headers, payload: { email: 'a2@example.com', password: 'password a2', role: 'viewer' } })).statusCode).toBe(201);
  expect((await api.sut.inject({ method: 'POST', url: '/v1/api-keys', headers, payload: { name: 'a key' } })).statusCode).toBe(201);
  expect((await api.sut.inject({ method: 'POST', url: '/v1/devices', headers, payload: { name: 'a tracker', kind: 'tracker' } })).statusCode).toBe(201);
  // And one of each business object, a sign-off, history and an idempotency key with them.
  for (const [url, payload] of [['/v1/clients', { name: 'a client' }], ['/v1/sites', { name: 'a site' }], ['/v1/employees', { name: 'an employee' }],
    ['/v1/assets', { name: 'an asset' }]] as const) {
    expect((await api.sut.inject({ method: 'POST', url, headers, payload })).statusCode).toBe(201);
  }
  const order = await api.sut.inject({ method: 'POST', url: '/v1/work-orders', headers: { ...headers, 'idempotency-key': 'k1' }, payload: { title: 'a job' } });
  expect(order.statusCode).toBe(201);
  const employee = await api.sut.inject({ method: 'POST', url: '/v1/employees', headers, payload: { name: 'worker' } });
  const id = order.json().data.id;
  await api.sut.inject({ method: 'POST', url: `/v1/work-orders/${id}/assign`, headers, payload: { employee_id: employee.json().data.id } });
  await api.sut.inject({ method: 'POST', url: `/v1/work-orders/${id}/start`, headers });
  expect((await api.sut.inject({ method: 'POST', url: `/v1/work-orders/${id}/complete`, headers, payload: { signed_by: 'a signer' } })).statusCode).toBe(200);
});

const TENANT_TABLES = ['users', 'api_keys', 'devices', 'clients', 'sites', 'employees', 'assets', 'work_orders', 'work_order_signoffs',
  'object_versions', 'idempotency_keys', 'events'];

afterAll(async () => {
  await service?.end();
  await api?.close();
  await db?.drop();
});

/** Runs `sql` as the API's service role in a transaction with `tenantId` set (or none). */
async function asService<T extends pg.QueryResultRow>(tenantId: string | null, sql: string): Promise<T[]> {
  const client = await service.connect();
  try {
    await client.query('begin');
    if (tenantId) await client.query("select set_config('app.tenant_id', $1, true)", [tenantId]);
    const { rows } = await client.query<T>(sql);
    await client.query('commit');
    return rows;
  } catch (err) {
    await client.query('rollback');
    throw err;
  } finally {
    client.release();
  }
}

describe('the API service role at the database', () => {
  it('is not a superuser and cannot bypass row-level security', async () => {
    const [role] = await asService<{ rolsuper: boolean; rolbypassrls: boolean; current_user: string }>(
      null, 'select current_user, rolsuper, rolbypassrls from pg_roles where rolname = current_user',
    );
    expect(role).toEqual({ current_user: 'fieldops_api', rolsuper: false, rolbypassrls: false });
  });

  it('sees its own tenant\'s rows of every business table', async () => {
    for (const table of TENANT_TABLES) {
      const rows = await asService<{ tenant_id: string }>(tenantA.id, `select tenant_id from ${table}`);
      expect(rows.length, table).toBeGreaterThan(0);
      expect(new Set(rows.map((r) => r.tenant_id)), table).toEqual(new Set([tenantA.id]));
    }
  });

  it('with another tenant set, sees no row of tenant A', async () => {
    for (const table of TENANT_TABLES) {
      const rows = await asService<{ tenant_id: string }>(tenantB.id, `select tenant_id from ${table}`);
      expect(rows.filter((r) => r.tenant_id === tenantA.id), table).toEqual([]);
    }
    expect(await asService(tenantB.id, `select id from organizations where id = '${tenantA.id}'`)).toEqual([]);
  });

  it('with no tenant set, sees nothing at all', async () => {
    for (const table of ['organizations', ...TENANT_TABLES]) {
      expect(await asService(null, `select * from ${table}`), table).toEqual([]);
    }
  });

  it('may not delete work orders, sign-offs or history (archived and kept), nor rewrite a sign-off', async () => {
    for (const sql of ['delete from work_orders', 'delete from work_order_signoffs', 'update work_order_signoffs set signed_by = $$x$$',
      'delete from object_versions', 'update object_versions set action = $$x$$', 'delete from idempotency_keys']) {
      await expect(asService(tenantA.id, sql), sql).rejects.toThrow(/permission denied/);
    }
  });

  it('the worker role reads no business table but a site\'s fence', async () => {
    const worker = new pg.Pool({ connectionString: db.config.serviceDatabaseUrls.worker, max: 1 });
    try {
      for (const sql of ['select * from clients', 'select name from sites', 'select * from work_orders', 'select * from object_versions']) {
        await expect(worker.query(sql), sql).rejects.toThrow(/permission denied/);
      }
      await expect(worker.query('select id, tenant_id, geofence_id from sites')).resolves.toBeDefined();
    } finally {
      await worker.end();
    }
  });

  it('cannot write a row into another tenant', async () => {
    await expect(asService(tenantB.id, `insert into devices (tenant_id, name, kind, token_hash) values ('${tenantA.id}', 'sneaky', 'tracker', '\\x00')`))
      .rejects.toThrow(/row-level security/);
  });
});

describe('time series as the API service role', () => {
  beforeAll(async () => {
    // Written as the owner, as ingest would: one fix and one punch per tenant.
    for (const tenant of [tenantA, tenantB]) {
      const device = await createDevice(db.owner, tenant.id);
      await db.owner.query(
        `insert into positions (tenant_id, device_id, ts, lat, lon) values ($1, $2, now(), 52.1, 4.3)`,
        [tenant.id, device.id],
      );
      await db.owner.query(
        `insert into punches (tenant_id, device_id, ts, employee_ref, kind) values ($1, $2, now(), 'badge-1', 'in')`,
        [tenant.id, device.id],
      );
    }
  });

  it('is refused the base tables', async () => {
    await expect(asService(tenantA.id, 'select * from positions')).rejects.toThrow(/permission denied/);
    await expect(asService(tenantA.id, 'select * from punches')).rejects.toThrow(/permission denied/);
    await expect(asService(tenantA.id, 'select * from positions_default')).rejects.toThrow(/permission denied/);
  });

  it('sees only its tenant\'s rows through positions_v and punches_v, and none without a tenant', async () => {
    for (const view of ['positions_v', 'punches_v']) {
      const a = await asService<{ tenant_id: string }>(tenantA.id, `select tenant_id from ${view}`);
      expect(a.map((r) => r.tenant_id), view).toEqual([tenantA.id]);
      const b = await asService<{ tenant_id: string }>(tenantB.id, `select tenant_id from ${view}`);
      expect(b.map((r) => r.tenant_id), view).toEqual([tenantB.id]);
      expect(await asService(null, `select * from ${view}`), view).toEqual([]);
    }
  });
});
