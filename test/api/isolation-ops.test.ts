import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildTestApi, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { dataUrl, pngBytes } from '../support/images.js';
import { CHECKLIST } from '../support/inspections.js';

/**
 * The tables of quotes, inventory and inspections (migration 008) seen by the API's service role
 * (`fieldops_api`) at the database: row-level security on every one, and the records that are written
 * once cannot be changed by it.
 */
let db: TestDatabase;
let api: TestApi;
let service: pg.Pool;
let tenantA: TestOrg;
let tenantB: TestOrg;

const TABLES = ['tenant_counters', 'quotes', 'quote_revisions', 'quote_signatures', 'mail_outbox', 'warehouses', 'inventory_items',
  'inventory_balances', 'inventory_stock', 'inventory_movements', 'purchase_orders', 'inspection_templates', 'inspection_forms', 'inspection_photos'];

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config);
  service = new pg.Pool({ connectionString: db.config.serviceDatabaseUrls.api, max: 2 });
  tenantA = await createOrg(db.owner, 'unlimited');
  tenantB = await createOrg(db.owner, 'unlimited');

  // One of everything in tenant A, made through the API.
  const headers = bearer(await login(api, tenantA));
  const post = async (url: string, payload?: object) => {
    const res = await api.sut.inject({ method: 'POST', url, headers, ...(payload ? { payload } : {}) });
    expect(res.statusCode, `${url} ${res.body}`).toBeLessThan(300);
    return res.json().data;
  };
  const quote = await post('/v1/quotes', { items: [{ kind: 'part', description: 'x', quantity: 1, unit_price: 100, tax_rate: 10 }] });
  await post(`/v1/quotes/${quote.id}/send`, { to: 'client@example.com' });
  await post(`/v1/quotes/${quote.id}/accept`, { signed_by: 'C', signature: dataUrl(pngBytes()) });
  await post(`/v1/quotes/${quote.id}/revisions`, {});
  const warehouse = await post('/v1/warehouses', { name: 'Depot' });
  const item = await post('/v1/inventory', { sku: 'S-1', name: 'Part' });
  await post(`/v1/inventory/${item.id}/movements`, { kind: 'receive', warehouse_id: warehouse.id, quantity: 2, unit_cost: 10 });
  await post('/v1/purchase-orders', { supplier: 'S', warehouse_id: warehouse.id, lines: [{ item_id: item.id, quantity: 1, unit_cost: 5 }] });
  const template = await post('/v1/inspection-templates', CHECKLIST);
  await post('/v1/inspection-forms', {
    template_id: template.id, answers: { brakes_ok: true, hours: 1, front: dataUrl(pngBytes()) }, signed_by: 'S', signature: dataUrl(pngBytes()),
  });
});

afterAll(async () => {
  await service?.end();
  await api?.close();
  await db?.drop();
});

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

describe('the API service role on the business-operations tables', () => {
  it('sees its own tenant\'s rows of every table, none of another tenant, nothing without a tenant', async () => {
    for (const table of TABLES) {
      const own = await asService<{ tenant_id: string }>(tenantA.id, `select tenant_id from ${table}`);
      expect(own.length, table).toBeGreaterThan(0);
      expect(new Set(own.map((r) => r.tenant_id)), table).toEqual(new Set([tenantA.id]));
      expect(await asService(tenantB.id, `select tenant_id from ${table}`), table).toEqual([]);
      expect(await asService(null, `select * from ${table}`), table).toEqual([]);
    }
  });

  it('cannot write rows into another tenant', async () => {
    await expect(asService(tenantB.id, `insert into warehouses (tenant_id, name) values ('${tenantA.id}', 'sneaky')`)).rejects.toThrow(/row-level security/);
  });

  it('cannot change what is written once (movements, revisions, signatures, sent mail, forms, photos) nor delete stock or orders', async () => {
    for (const sql of ['update inventory_movements set quantity = 1', 'delete from inventory_movements', 'delete from quote_revisions',
      'update quote_signatures set signed_by = $$x$$', 'delete from quote_signatures', 'update mail_outbox set body = $$x$$', 'delete from mail_outbox',
      'update inspection_forms set answers = $${}$$', 'delete from inspection_forms', 'update inspection_photos set size = 1', 'delete from inspection_photos',
      'delete from inventory_balances', 'delete from inventory_stock', 'delete from purchase_orders']) {
      await expect(asService(tenantA.id, sql), sql).rejects.toThrow(/permission denied/);
    }
  });
});
