import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildTestApi, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createEmployee, createOrg, type TestOrg } from '../support/factories.js';

/**
 * `meta.total` of the work-order list is summed from counts the database keeps beside the orders
 * (migration 013; docs/design.md, "List totals"): it must equal counting the orders, after creates,
 * moves, archiving, concurrent writes and writes outside the API, in each tenant on its own.
 */
let db: TestDatabase;
let api: TestApi;
let orgA: TestOrg;
let orgB: TestOrg;
let tokenA: string;
let tokenB: string;

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config);
  orgA = await createOrg(db.owner);
  orgB = await createOrg(db.owner);
  tokenA = await login(api, orgA);
  tokenB = await login(api, orgB);
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

const call = (token: string, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
  api.sut.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });

async function create(token: string, fields: object = {}): Promise<string> {
  const res = await call(token, 'POST', '/v1/work-orders', { title: 'Visit', ...fields });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data.id;
}

const total = async (token: string, query = '') => {
  const res = await call(token, 'GET', `/v1/work-orders?limit=1${query}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json().meta.total as number;
};

/** The truth: the orders themselves, counted as the owner. */
async function counted(org: TestOrg, where: string): Promise<number> {
  const { rows } = await db.owner.query(`select count(*)::int as n from work_orders where tenant_id = $1 and ${where}`, [org.id]);
  return rows[0].n;
}

async function expectTotalsTrue(org: TestOrg, token: string) {
  expect(await total(token)).toBe(await counted(org, 'archived_at is null'));
  expect(await total(token, '&status=draft')).toBe(await counted(org, `archived_at is null and status = 'draft'`));
  expect(await total(token, '&status=assigned,in_progress')).toBe(await counted(org, `archived_at is null and status in ('assigned', 'in_progress')`));
  expect(await total(token, '&archived=true')).toBe(await counted(org, 'archived_at is not null'));
  expect(await total(token, '&archived=true&status=draft')).toBe(await counted(org, `archived_at is not null and status = 'draft'`));
  // Past the end by offset: the total is still the kept count.
  expect((await call(token, 'GET', '/v1/work-orders?limit=5&offset=9000')).json().meta.total).toBe(await counted(org, 'archived_at is null'));
}

describe('work-order list totals', () => {
  it('start at zero and follow creates, moves and archiving, per tenant', async () => {
    expect(await total(tokenA)).toBe(0);
    const employee = await createEmployee(db.owner, orgA.id);
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await create(tokenA));
    await create(tokenA, { scheduled_start: '2030-01-01T08:00:00Z', scheduled_end: '2030-01-01T10:00:00Z' });
    await create(tokenB);
    expect((await call(tokenA, 'POST', `/v1/work-orders/${ids[0]}/assign`, { employee_id: employee })).statusCode).toBe(200);
    expect((await call(tokenA, 'POST', `/v1/work-orders/${ids[1]}/assign`, { employee_id: employee })).statusCode).toBe(200);
    expect((await call(tokenA, 'POST', `/v1/work-orders/${ids[1]}/start`)).statusCode).toBe(200);
    expect((await call(tokenA, 'POST', `/v1/work-orders/${ids[2]}/cancel`)).statusCode).toBe(200);
    expect((await call(tokenA, 'DELETE', `/v1/work-orders/${ids[3]}`)).statusCode).toBeLessThan(300);
    expect(await total(tokenA)).toBe(6);
    expect(await total(tokenA, '&status=assigned')).toBe(1);
    expect(await total(tokenA, '&archived=true')).toBe(1);
    expect(await total(tokenB)).toBe(1);
    await expectTotalsTrue(orgA, tokenA);
    await expectTotalsTrue(orgB, tokenB);
  });

  it('stay exact under concurrent creates and after many writes (the counts fold as they go)', async () => {
    await Promise.all(Array.from({ length: 40 }, () => create(tokenA)));
    for (let i = 0; i < 120; i++) await create(tokenB);
    await expectTotalsTrue(orgA, tokenA);
    await expectTotalsTrue(orgB, tokenB);
    // 120 creates made 120 deltas; a write that leaves a tenant more than 64 rows folds them.
    const { rows } = await db.owner.query('select count(*)::int as n from work_order_counts where tenant_id = $1', [orgB.id]);
    expect(rows[0].n).toBeLessThanOrEqual(64);
  });

  it('follow writes made outside the API, a bulk insert and a rolled-back one', async () => {
    await asTenant(db.owner, orgA.id, (q) => q.query(
      `insert into work_orders (tenant_id, title, status) select $1, 'bulk ' || n, 'draft' from generate_series(1, 500) n`, [orgA.id]));
    await asTenant(db.owner, orgA.id, (q) => q.query(`update work_orders set status = 'scheduled' where tenant_id = $1 and title like 'bulk 1%'`, [orgA.id]));
    await expect(asTenant(db.owner, orgA.id, async (q) => {
      await q.query(`insert into work_orders (tenant_id, title, status) select $1, 'gone', 'draft' from generate_series(1, 50)`, [orgA.id]);
      throw new Error('rolled back');
    })).rejects.toThrow('rolled back');
    await expectTotalsTrue(orgA, tokenA);
  });

  it('count the filtered lists the kept counts cannot answer by counting', async () => {
    expect(await total(tokenA, '&title=bulk 1')).toBe(await counted(orgA, `archived_at is null and title ilike '%bulk 1%'`));
    expect(await total(tokenA, '&priority=normal&status=draft')).toBe(await counted(orgA, `archived_at is null and priority = 'normal' and status = 'draft'`));
  });

  it('are read from the kept counts, not counted, where the filters allow', async () => {
    // A delta no order made: only a total read from the counts shows it.
    await db.owner.query(`insert into work_order_counts (tenant_id, status, archived, n) values ($1, 'draft', false, 1000)`, [orgA.id]);
    try {
      expect(await total(tokenA)).toBe(await counted(orgA, 'archived_at is null') + 1000);
      expect(await total(tokenA, '&title=bulk')).toBe(await counted(orgA, `archived_at is null and title ilike '%bulk%'`));
    } finally {
      await db.owner.query(`insert into work_order_counts (tenant_id, status, archived, n) values ($1, 'draft', false, -1000)`, [orgA.id]);
    }
    await expectTotalsTrue(orgA, tokenA);
  });

  it('let a tenant with orders be deleted', async () => {
    const org = await createOrg(db.owner);
    const token = await login(api, org);
    await create(token);
    await db.owner.query('delete from organizations where id = $1', [org.id]);
    const { rows } = await db.owner.query('select count(*)::int as n from work_order_counts where tenant_id = $1', [org.id]);
    expect(rows[0].n).toBe(0);
  });
});
