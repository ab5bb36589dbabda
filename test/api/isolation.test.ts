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
});

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

  it('sees its own tenant\'s users, api_keys and devices', async () => {
    for (const table of ['users', 'api_keys', 'devices']) {
      const rows = await asService<{ tenant_id: string }>(tenantA.id, `select tenant_id from ${table}`);
      expect(rows.length, table).toBeGreaterThan(0);
      expect(new Set(rows.map((r) => r.tenant_id)), table).toEqual(new Set([tenantA.id]));
    }
  });

  it('with another tenant set, sees no row of tenant A', async () => {
    for (const table of ['users', 'api_keys', 'devices']) {
      const rows = await asService<{ tenant_id: string }>(tenantB.id, `select tenant_id from ${table}`);
      expect(rows.filter((r) => r.tenant_id === tenantA.id), table).toEqual([]);
    }
    expect(await asService(tenantB.id, `select id from organizations where id = '${tenantA.id}'`)).toEqual([]);
  });

  it('with no tenant set, sees nothing at all', async () => {
    for (const table of ['organizations', 'users', 'api_keys', 'devices']) {
      expect(await asService(null, `select * from ${table}`), table).toEqual([]);
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
