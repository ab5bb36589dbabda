import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createOrg, type TestOrg } from '../support/factories.js';

let db: TestDatabase;
let api: TestApi;
let org: TestOrg;
let token: string;

beforeAll(async () => {
  db = await createTestDatabase();
  // Enough connections that the concurrency test really has transactions racing in the database.
  api = await buildTestApi(db.config, { poolSize: 20 });
  org = await createOrg(db.owner, 'unlimited');
  token = await login(api, org);
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
const inject = (method: Method, url: string, payload?: object, headers: Record<string, string> = {}, as = token) =>
  api.sut.inject({ method, url, headers: { ...bearer(as), ...headers }, ...(payload ? { payload } : {}) });

async function created(url: string, body: object, as = token) {
  const res = await inject('POST', url, body, {}, as);
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data;
}

const warehouse = (name = 'Depot', location?: unknown) => created('/v1/warehouses', location === undefined ? { name } : { name, location });
const item = (fields: object = {}) => created('/v1/inventory', { sku: `SKU-${randomUUID().slice(0, 8)}`, name: 'Hydraulic filter', ...fields });
const move = (itemId: string, body: object, headers: Record<string, string> = {}) => inject('POST', `/v1/inventory/${itemId}/movements`, body, headers);

async function stockOf(itemId: string) {
  return (await inject('GET', `/v1/inventory/${itemId}`)).json().data;
}

describe('warehouses', () => {
  it('CRUD with a location in words or as coordinates, versions and If-Match', async () => {
    const depot = await warehouse('North depot', 'Industrial Rd 4, aisle 3');
    expect(depot).toMatchObject({ name: 'North depot', location: 'Industrial Rd 4, aisle 3', version: 1 });
    const van = await warehouse('Van 12', { lat: 52.37, lon: 4.89 });
    expect(van.location).toEqual({ lat: 52.37, lon: 4.89 });
    expect((await inject('POST', '/v1/warehouses', { name: 'Bad', location: { lat: 95, lon: 0 } })).statusCode).toBe(400);
    expect((await inject('POST', '/v1/warehouses', { name: '' })).statusCode).toBe(400);

    const renamed = await inject('PATCH', `/v1/warehouses/${van.id}`, { name: 'Van 12 (Ford)' }, { 'if-match': '"1"' });
    expect(renamed.json().data).toMatchObject({ name: 'Van 12 (Ford)', version: 2 });
    expect(renamed.headers.etag).toBe('"2"');
    expect((await inject('PATCH', `/v1/warehouses/${van.id}`, { location: null }, { 'if-match': '"1"' })).statusCode).toBe(409);
    const listed = (await inject('GET', '/v1/warehouses?name=van')).json();
    expect(listed.data.map((w: { id: string }) => w.id)).toEqual([van.id]);
    expect((await inject('DELETE', `/v1/warehouses/${depot.id}`)).statusCode).toBe(204);
    expect((await inject('GET', `/v1/warehouses/${depot.id}`)).statusCode).toBe(404);
  });

  it('a warehouse that held stock cannot be deleted', async () => {
    const depot = await warehouse();
    const part = await item();
    expect((await move(part.id, { kind: 'receive', warehouse_id: depot.id, quantity: 1, unit_cost: 5 })).statusCode).toBe(201);
    const res = await inject('DELETE', `/v1/warehouses/${depot.id}`);
    expect(res.statusCode).toBe(409);
    expect(errorOf(res).code).toBe('conflict');
  });
});

describe('the parts catalogue', () => {
  it('items carry stock per warehouse, quantity on hand and average cost; sku is unique per tenant', async () => {
    const part = await item({ sku: 'FLT-100', unit: 'pcs', fits_models: ['320D', 'CAT 336'] });
    expect(part).toMatchObject({ sku: 'FLT-100', quantity_on_hand: 0, average_cost: 0, stock_value: 0, stock: [], fits_models: ['320D', 'CAT 336'], version: 1 });
    const dup = await inject('POST', '/v1/inventory', { sku: 'FLT-100', name: 'Again' });
    expect(dup.statusCode).toBe(409);
    expect(errorOf(dup).issues).toEqual([{ path: 'sku', message: 'is taken' }]);
    // Another tenant has its own skus.
    const other = await createOrg(db.owner, 'unlimited');
    expect((await created('/v1/inventory', { sku: 'FLT-100', name: 'Theirs' }, await login(api, other))).sku).toBe('FLT-100');

    const edited = await inject('PATCH', `/v1/inventory/${part.id}`, { name: 'Filter, hydraulic', fits_models: ['320D'] }, { 'if-match': '"1"' });
    expect(edited.json().data).toMatchObject({ name: 'Filter, hydraulic', fits_models: ['320D'], version: 2 });
    expect((await inject('PATCH', `/v1/inventory/${part.id}`, { quantity_on_hand: 5 })).statusCode).toBe(400);
    expect((await inject('POST', '/v1/inventory', { sku: 'x' })).statusCode).toBe(400);
  });

  it('a stock movement does not move the item\'s version (its ETag names the catalogue entry)', async () => {
    const depot = await warehouse();
    const part = await item();
    await move(part.id, { kind: 'receive', warehouse_id: depot.id, quantity: 3, unit_cost: 100 });
    const read = await inject('GET', `/v1/inventory/${part.id}`);
    expect(read.json().data).toMatchObject({ quantity_on_hand: 3, version: 1 });
    expect(read.headers.etag).toBe('"1"');
  });

  it('lists filter by sku, name, warehouse and fitting model, and page', async () => {
    const other = await createOrg(db.owner, 'unlimited');
    const theirs = await login(api, other);
    const a = await created('/v1/inventory', { sku: 'A-1', name: 'Air filter', fits_models: ['320D'] }, theirs);
    const b = await created('/v1/inventory', { sku: 'B-1', name: 'Bucket tooth', fits_models: ['320d', 'PC210'] }, theirs);
    await created('/v1/inventory', { sku: 'C-1', name: 'Cab light' }, theirs);
    const van = await created('/v1/warehouses', { name: 'Van' }, theirs);
    await inject('POST', `/v1/inventory/${b.id}/movements`, { kind: 'receive', warehouse_id: van.id, quantity: 2, unit_cost: 10 }, {}, theirs);
    const list = async (query: string) => (await inject('GET', `/v1/inventory${query}`, undefined, {}, theirs)).json();

    expect((await list('')).meta.total).toBe(3);
    expect((await list('?sku=A-1')).data.map((i: { id: string }) => i.id)).toEqual([a.id]);
    expect((await list('?name=TOOTH')).data.map((i: { id: string }) => i.id)).toEqual([b.id]);
    expect((await list(`?warehouse_id=${van.id}`)).data.map((i: { id: string }) => i.id)).toEqual([b.id]);
    expect((await list('?fits_model=320D&sort=sku')).data.map((i: { id: string }) => i.id)).toEqual([a.id, b.id]);
    expect((await list('?sort=-quantity_on_hand&limit=1')).data.map((i: { id: string }) => i.id)).toEqual([b.id]);
    const first = await list('?sort=sku&limit=2');
    const second = await list(`?limit=2&cursor=${first.meta.next_cursor}`);
    expect([...first.data, ...second.data].map((i: { sku: string }) => i.sku)).toEqual(['A-1', 'B-1', 'C-1']);
  });
});

describe('parts and machines', () => {
  it('which parts fit an asset, by its model, case-insensitively', async () => {
    const fleet = await login(api, await createOrg(db.owner, 'unlimited'));
    const make = (url: string, body: object) => created(url, body, fleet);
    const excavator = await make('/v1/assets', { name: 'Excavator 7', make: 'Caterpillar', model: '320D' });
    const loader = await make('/v1/assets', { name: 'Loader', model: 'WA380' });
    const bare = await make('/v1/assets', { name: 'Trailer' });
    const filter = await make('/v1/inventory', { sku: 'F', name: 'Filter', fits_models: ['320d ', 'PC210'] });
    const tooth = await make('/v1/inventory', { sku: 'T', name: 'Tooth', fits_models: ['320D'] });
    await make('/v1/inventory', { sku: 'O', name: 'Other', fits_models: ['WA380'] });
    const get = async (url: string) => (await inject('GET', url, undefined, {}, fleet)).json();

    const parts = await get(`/v1/assets/${excavator.id}/parts?sort=name`);
    expect(parts.data.map((p: { id: string }) => p.id)).toEqual([filter.id, tooth.id]);
    expect(parts.data[0]).toHaveProperty('stock');
    const viaFilter = await get(`/v1/inventory?fits_asset_id=${excavator.id}&sort=name`);
    expect(viaFilter.data.map((p: { id: string }) => p.id)).toEqual([filter.id, tooth.id]);
    expect((await get(`/v1/assets/${loader.id}/parts`)).meta.total).toBe(1);
    expect(await get(`/v1/assets/${bare.id}/parts`)).toMatchObject({ data: [], meta: { total: 0 } });
    expect((await inject('GET', `/v1/assets/${randomUUID()}/parts`, undefined, {}, fleet)).statusCode).toBe(404);
    // Another tenant's asset is not there.
    expect((await inject('GET', `/v1/assets/${excavator.id}/parts`)).statusCode).toBe(404);
  });
});

describe('stock movements', () => {
  it('keep the weighted-average cost exactly, in integer minor units, down to a value of exactly 0', async () => {
    const depot = await warehouse();
    const part = await item();
    const steps: [object, { quantity_on_hand: number; stock_value: number; average_cost: number }][] = [
      [{ kind: 'receive', quantity: 3, unit_cost: 1000 }, { quantity_on_hand: 3, stock_value: 3000, average_cost: 1000 }],
      // (3000 + 2 × 1001) / 5 = 1000.4 → 1000
      [{ kind: 'receive', quantity: 2, unit_cost: 1001 }, { quantity_on_hand: 5, stock_value: 5002, average_cost: 1000 }],
      // 5002 × 1/5 = 1000.4 → 1000 leaves; 4002 / 4 = 1000.5 → 1001
      [{ kind: 'consume', quantity: 1 }, { quantity_on_hand: 4, stock_value: 4002, average_cost: 1001 }],
      // (4002 + 7 × 333) / 11 = 6333 / 11 = 575.7 → 576
      [{ kind: 'receive', quantity: 7, unit_cost: 333 }, { quantity_on_hand: 11, stock_value: 6333, average_cost: 576 }],
      // 6333 × 3/11 = 1727.18 → 1727; 4606 / 8 = 575.75 → 576
      [{ kind: 'consume', quantity: 3 }, { quantity_on_hand: 8, stock_value: 4606, average_cost: 576 }],
      // a found unit at the average: +576
      [{ kind: 'adjust', quantity: 1 }, { quantity_on_hand: 9, stock_value: 5182, average_cost: 576 }],
      // 5182 × 2/9 = 1151.56 → 1152
      [{ kind: 'adjust', quantity: -2 }, { quantity_on_hand: 7, stock_value: 4030, average_cost: 576 }],
      // the last units take all of the value that is left
      [{ kind: 'consume', quantity: 7 }, { quantity_on_hand: 0, stock_value: 0, average_cost: 576 }],
      [{ kind: 'receive', quantity: 1, unit_cost: 7 }, { quantity_on_hand: 1, stock_value: 7, average_cost: 7 }],
    ];
    const values: number[] = [];
    for (const [body, expected] of steps) {
      const res = await move(part.id, { warehouse_id: depot.id, ...body });
      expect(res.statusCode, res.body).toBe(201);
      const movement = res.json().data;
      expect({ quantity_on_hand: movement.quantity_after, stock_value: movement.stock_value_after, average_cost: movement.average_cost_after }, JSON.stringify(body)).toEqual(expected);
      expect(await stockOf(part.id)).toMatchObject({ ...expected, stock: [{ warehouse_id: depot.id, quantity: expected.quantity_on_hand }] });
      values.push(movement.value);
    }
    expect(values).toEqual([3000, 2002, -1000, 2331, -1727, 576, -1152, -4030, 7]);
    // Rounding moves no value: the movements add up to the stock's value.
    expect(values.reduce((a, b) => a + b, 0)).toBe(7);
  });

  it('transfers move units between warehouses and keep the value; a movement past the stock is 409 and writes nothing', async () => {
    const north = await warehouse('North');
    const van = await warehouse('Van');
    const part = await item();
    await move(part.id, { kind: 'receive', warehouse_id: north.id, quantity: 10, unit_cost: 250 });
    const transfer = await move(part.id, { kind: 'transfer', warehouse_id: north.id, to_warehouse_id: van.id, quantity: 4 });
    expect(transfer.json().data).toMatchObject({ kind: 'transfer', quantity: 4, value: 0, unit_cost: 250, quantity_after: 10, stock_value_after: 2500 });
    const stock = await stockOf(part.id);
    expect(stock.stock).toEqual(expect.arrayContaining([{ warehouse_id: north.id, quantity: 6 }, { warehouse_id: van.id, quantity: 4 }]));

    const tooMany = await move(part.id, { kind: 'consume', warehouse_id: van.id, quantity: 5 });
    expect(tooMany.statusCode).toBe(409);
    expect(errorOf(tooMany)).toMatchObject({ code: 'conflict', message: expect.stringContaining('holds 4') });
    expect((await move(part.id, { kind: 'transfer', warehouse_id: van.id, to_warehouse_id: north.id, quantity: 5 })).statusCode).toBe(409);
    expect((await move(part.id, { kind: 'adjust', warehouse_id: van.id, quantity: -5 })).statusCode).toBe(409);
    // A warehouse that never held the item holds 0.
    const empty = await warehouse('Empty');
    expect((await move(part.id, { kind: 'consume', warehouse_id: empty.id, quantity: 1 })).statusCode).toBe(409);
    expect(await stockOf(part.id)).toMatchObject({ quantity_on_hand: 10, stock_value: 2500 });
    expect((await inject('GET', `/v1/inventory/${part.id}/movements`)).json().meta.total).toBe(2);
  });

  it('refuses malformed movements with the fields named', async () => {
    const depot = await warehouse();
    const part = await item();
    const cases: [object, string][] = [
      [{ kind: 'receive', warehouse_id: depot.id, quantity: 1 }, 'unit_cost'],
      [{ kind: 'consume', warehouse_id: depot.id, quantity: 1, unit_cost: 5 }, 'unit_cost'],
      [{ kind: 'transfer', warehouse_id: depot.id, quantity: 1 }, 'to_warehouse_id'],
      [{ kind: 'transfer', warehouse_id: depot.id, to_warehouse_id: depot.id, quantity: 1 }, 'to_warehouse_id'],
      [{ kind: 'receive', warehouse_id: depot.id, to_warehouse_id: depot.id, quantity: 1, unit_cost: 1 }, 'to_warehouse_id'],
      [{ kind: 'consume', warehouse_id: depot.id, quantity: -1 }, 'quantity'],
      [{ kind: 'adjust', warehouse_id: depot.id, quantity: 0 }, 'quantity'],
      [{ kind: 'consume', warehouse_id: depot.id, quantity: 1.5 }, 'quantity'],
      [{ kind: 'steal', warehouse_id: depot.id, quantity: 1 }, 'kind'],
      [{ kind: 'receive', warehouse_id: randomUUID(), quantity: 1, unit_cost: 1 }, 'warehouse_id'],
      [{ kind: 'consume', warehouse_id: depot.id, quantity: 1, work_order_id: randomUUID() }, 'work_order_id'],
      [{ kind: 'receive', warehouse_id: 'nope', quantity: 1, unit_cost: 1 }, 'warehouse_id'],
    ];
    for (const [body, path] of cases) {
      const res = await move(part.id, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(errorOf(res).issues.map((i) => i.path), JSON.stringify(body)).toContain(path);
    }
    expect((await move(randomUUID(), { kind: 'receive', warehouse_id: depot.id, quantity: 1, unit_cost: 1 })).statusCode).toBe(404);
    expect((await inject('GET', `/v1/inventory/${part.id}/movements`)).json().meta.total).toBe(0);
  });

  it('consumes against a work order, and the log lists them by work order, kind and warehouse', async () => {
    const depot = await warehouse();
    const part = await item();
    const order = await created('/v1/work-orders', { title: 'Fix pump' });
    await move(part.id, { kind: 'receive', warehouse_id: depot.id, quantity: 5, unit_cost: 120 });
    const used = await move(part.id, { kind: 'consume', warehouse_id: depot.id, quantity: 2, work_order_id: order.id, note: 'left pump' });
    expect(used.json().data).toMatchObject({ work_order_id: order.id, value: -240, unit_cost: 120, note: 'left pump', created_by: expect.any(String) });
    const log = (query: string) => inject('GET', `/v1/inventory/${part.id}/movements${query}`).then((r) => r.json());
    expect((await log(`?work_order_id=${order.id}`)).data.map((m: { kind: string }) => m.kind)).toEqual(['consume']);
    expect((await log('?kind=receive')).meta.total).toBe(1);
    expect((await log(`?warehouse_id=${depot.id}&sort=-id`)).data.map((m: { kind: string }) => m.kind)).toEqual(['consume', 'receive']);
    expect((await log('?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z')).meta.total).toBe(0);
  });

  it('the movement log is append-only, in the database', async () => {
    const depot = await warehouse();
    const part = await item();
    await move(part.id, { kind: 'receive', warehouse_id: depot.id, quantity: 1, unit_cost: 1 });
    // The API's role has no right to change it…
    const client = await api.pool.connect();
    try {
      await client.query('begin');
      await client.query("select set_config('app.tenant_id', $1, true)", [org.id]);
      await expect(client.query('update inventory_movements set quantity = 99')).rejects.toThrow(/permission denied/);
      await client.query('rollback');
      await client.query('begin');
      await client.query("select set_config('app.tenant_id', $1, true)", [org.id]);
      await expect(client.query('delete from inventory_movements')).rejects.toThrow(/permission denied/);
    } finally {
      await client.query('rollback');
      client.release();
    }
    // …and a trigger refuses it even to the owner.
    await expect(db.owner.query('update inventory_movements set note = $1', ['edited'])).rejects.toThrow(/append-only/);
    await expect(db.owner.query('delete from inventory_movements')).rejects.toThrow(/append-only/);
    await expect(db.owner.query('truncate inventory_movements')).rejects.toThrow(/append-only/);
    // An item with movements stays, its history with it.
    expect((await inject('DELETE', `/v1/inventory/${part.id}`)).statusCode).toBe(409);
    const fresh = await item();
    expect((await inject('DELETE', `/v1/inventory/${fresh.id}`)).statusCode).toBe(204);
  });

  it('50 concurrent consumes over real HTTP against a stock of 20: exactly 20 succeed, the rest 409, never below zero', async () => {
    const depot = await warehouse();
    const part = await item();
    await move(part.id, { kind: 'receive', warehouse_id: depot.id, quantity: 20, unit_cost: 99 });
    const base = await api.listen();
    const results = await Promise.all(Array.from({ length: 50 }, async () => {
      const res = await fetch(`${base}/v1/inventory/${part.id}/movements`, {
        method: 'POST',
        headers: { ...bearer(token), 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'consume', warehouse_id: depot.id, quantity: 1 }),
      });
      return { status: res.status, body: await res.json() as { data?: { quantity_after: number }; error?: { code: string } } };
    }));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(20);
    expect(statuses.filter((s) => s === 409)).toHaveLength(30);
    expect(results.filter((r) => r.status === 409).every((r) => r.body.error?.code === 'conflict')).toBe(true);
    // Each success saw its own stock level: 19, 18, …, 0, each exactly once.
    expect(results.flatMap((r) => (r.body.data ? [r.body.data.quantity_after] : [])).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(await stockOf(part.id)).toMatchObject({ quantity_on_hand: 0, stock_value: 0, stock: [{ warehouse_id: depot.id, quantity: 0 }] });
    const movements = await asTenant(db.owner, org.id, async (c) =>
      (await c.query<{ kind: string; n: string; min_after: string }>(
        'select kind, count(*) as n, min(quantity_after) as min_after from inventory_movements where item_id = $1 group by kind order by kind', [part.id])).rows);
    expect(movements).toEqual([{ kind: 'consume', n: '20', min_after: '0' }, { kind: 'receive', n: '1', min_after: '20' }]);
  });
});

describe('purchase orders', () => {
  it('draft → ordered → received in parts: receipts are movements at the order\'s price, the average follows', async () => {
    const depot = await warehouse('Receiving');
    const filter = await item({ name: 'Filter' });
    const belt = await item({ name: 'Belt' });
    await move(filter.id, { kind: 'receive', warehouse_id: depot.id, quantity: 2, unit_cost: 100 });
    const draft = await created('/v1/purchase-orders', {
      supplier: 'Parts & Co', warehouse_id: depot.id, lines: [{ item_id: filter.id, quantity: 4, unit_cost: 130 }, { item_id: belt.id, quantity: 3, unit_cost: 999 }],
    });
    expect(draft).toMatchObject({ status: 'draft', total: 4 * 130 + 3 * 999, number: expect.any(Number), lines: [{ received_quantity: 0, subtotal: 520 }, { subtotal: 2997 }] });
    expect((await inject('POST', `/v1/purchase-orders/${draft.id}/receive`)).statusCode).toBe(409);
    const edited = await inject('PATCH', `/v1/purchase-orders/${draft.id}`, { notes: 'urgent' }, { 'if-match': '"1"' });
    expect(edited.json().data).toMatchObject({ notes: 'urgent', version: 2 });
    expect((await inject('POST', `/v1/purchase-orders/${draft.id}/order`)).json().data).toMatchObject({ status: 'ordered', ordered_at: expect.any(String) });
    expect((await inject('PATCH', `/v1/purchase-orders/${draft.id}`, { notes: 'late' })).statusCode).toBe(409);

    const partial = await inject('POST', `/v1/purchase-orders/${draft.id}/receive`, { lines: [{ item_id: filter.id, quantity: 3 }] });
    expect(partial.statusCode, partial.body).toBe(200);
    expect(partial.json().data).toMatchObject({ status: 'partially_received', lines: [{ received_quantity: 3 }, { received_quantity: 0 }] });
    expect(partial.json().movements).toEqual([expect.objectContaining({ kind: 'receive', quantity: 3, unit_cost: 130, purchase_order_id: draft.id })]);
    // (2 × 100 + 3 × 130) / 5 = 118
    expect(await stockOf(filter.id)).toMatchObject({ quantity_on_hand: 5, stock_value: 590, average_cost: 118 });

    const tooMany = await inject('POST', `/v1/purchase-orders/${draft.id}/receive`, { lines: [{ item_id: filter.id, quantity: 2 }] });
    expect(tooMany.statusCode).toBe(409);
    expect(errorOf(tooMany).issues).toEqual([{ path: 'lines.0.quantity', message: 'exceeds the 1 still outstanding' }]);
    // The rest, by default everything outstanding.
    const rest = await inject('POST', `/v1/purchase-orders/${draft.id}/receive`);
    expect(rest.json().data).toMatchObject({ status: 'received', received_at: expect.any(String), lines: [{ received_quantity: 4 }, { received_quantity: 3 }] });
    expect(await stockOf(belt.id)).toMatchObject({ quantity_on_hand: 3, average_cost: 999, stock: [{ warehouse_id: depot.id, quantity: 3 }] });
    expect((await inject('GET', `/v1/inventory/${filter.id}/movements?purchase_order_id=${draft.id}`)).json().meta.total).toBe(2);
    expect((await inject('POST', `/v1/purchase-orders/${draft.id}/cancel`)).statusCode).toBe(409);
    expect((await inject('GET', '/v1/purchase-orders?status=received&supplier=parts')).json().data.map((o: { id: string }) => o.id)).toEqual([draft.id]);
  });

  it('validates lines, references and cancels what has not arrived', async () => {
    const depot = await warehouse();
    const part = await item();
    for (const [body, path] of [
      [{ supplier: 'S', warehouse_id: depot.id, lines: [] }, 'lines'],
      [{ supplier: 'S', warehouse_id: depot.id, lines: [{ item_id: part.id, quantity: 0, unit_cost: 1 }] }, 'lines.0.quantity'],
      [{ supplier: 'S', warehouse_id: depot.id, lines: [{ item_id: part.id, quantity: 1, unit_cost: 1 }, { item_id: part.id, quantity: 2, unit_cost: 1 }] }, 'lines.1.item_id'],
      [{ supplier: 'S', warehouse_id: depot.id, lines: [{ item_id: randomUUID(), quantity: 1, unit_cost: 1 }] }, 'lines.0.item_id'],
      [{ supplier: 'S', warehouse_id: randomUUID(), lines: [{ item_id: part.id, quantity: 1, unit_cost: 1 }] }, 'warehouse_id'],
    ] as [object, string][]) {
      const res = await inject('POST', '/v1/purchase-orders', body);
      expect(res.statusCode, path).toBe(400);
      expect(errorOf(res).issues.map((i) => i.path), path).toContain(path);
    }
    const order = await created('/v1/purchase-orders', { supplier: 'S', warehouse_id: depot.id, lines: [{ item_id: part.id, quantity: 5, unit_cost: 10 }] });
    await inject('POST', `/v1/purchase-orders/${order.id}/order`);
    await inject('POST', `/v1/purchase-orders/${order.id}/receive`, { lines: [{ item_id: part.id, quantity: 2 }] });
    const cancelled = await inject('POST', `/v1/purchase-orders/${order.id}/cancel`);
    expect(cancelled.json().data).toMatchObject({ status: 'cancelled', lines: [{ received_quantity: 2 }] });
    expect((await inject('POST', `/v1/purchase-orders/${order.id}/receive`)).statusCode).toBe(409);
    expect((await stockOf(part.id)).quantity_on_hand).toBe(2);
    const theirs = await login(api, await createOrg(db.owner, 'unlimited'));
    expect((await inject('GET', `/v1/purchase-orders/${order.id}`, undefined, {}, theirs)).statusCode).toBe(404);
  });
});

describe('tenancy, scopes and retries', () => {
  it('another tenant\'s items, warehouses and movements are 404; its warehouse cannot be named', async () => {
    const depot = await warehouse();
    const part = await item();
    const other = await createOrg(db.owner, 'unlimited');
    const theirs = await login(api, other);
    for (const [method, url, body] of [
      ['GET', `/v1/inventory/${part.id}`], ['PATCH', `/v1/inventory/${part.id}`, { name: 'x' }], ['DELETE', `/v1/inventory/${part.id}`],
      ['GET', `/v1/inventory/${part.id}/movements`], ['POST', `/v1/inventory/${part.id}/movements`, { kind: 'adjust', warehouse_id: depot.id, quantity: 1 }],
      ['GET', `/v1/warehouses/${depot.id}`], ['PATCH', `/v1/warehouses/${depot.id}`, { name: 'x' }], ['DELETE', `/v1/warehouses/${depot.id}`],
    ] as [Method, string, object?][]) {
      expect((await inject(method, url, body, {}, theirs)).statusCode, `${method} ${url}`).toBe(404);
    }
    const theirPart = await created('/v1/inventory', { sku: 'T-1', name: 'Theirs' }, theirs);
    const res = await inject('POST', `/v1/inventory/${theirPart.id}/movements`, { kind: 'receive', warehouse_id: depot.id, quantity: 1, unit_cost: 1 }, {}, theirs);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).issues).toEqual([{ path: 'warehouse_id', message: 'no warehouse with this id' }]);
  });

  it('reading needs inventory.read, moving stock inventory.write', async () => {
    const depot = await warehouse();
    const part = await item();
    const email = `tech-${randomUUID()}@example.com`;
    await inject('POST', '/v1/users', { email, password: 'long enough pw', role: 'technician' });
    const technician = await login(api, org, email, 'long enough pw');
    expect((await inject('GET', `/v1/inventory/${part.id}`, undefined, {}, technician)).statusCode).toBe(200);
    expect((await inject('GET', '/v1/warehouses', undefined, {}, technician)).statusCode).toBe(200);
    const denied = await inject('POST', `/v1/inventory/${part.id}/movements`, { kind: 'adjust', warehouse_id: depot.id, quantity: 1 }, {}, technician);
    expect(denied.statusCode).toBe(403);
    expect((await inject('POST', '/v1/warehouses', { name: 'x' }, {}, technician)).statusCode).toBe(403);
  });

  it('a repeated movement with the same Idempotency-Key moves stock once', async () => {
    const depot = await warehouse();
    const part = await item();
    const key = randomUUID();
    const body = { kind: 'receive', warehouse_id: depot.id, quantity: 4, unit_cost: 10 };
    const first = await move(part.id, body, { 'idempotency-key': key });
    const again = await move(part.id, body, { 'idempotency-key': key });
    expect(again.statusCode).toBe(201);
    expect(again.body).toBe(first.body);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect((await stockOf(part.id)).quantity_on_hand).toBe(4);
  });
});
