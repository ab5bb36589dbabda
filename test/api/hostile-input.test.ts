import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';

/**
 * Whatever a client puts in a query string or a body answers 4xx in the error shape, never 500
 * (docs/design.md, "Errors and credentials"). The lists are read from the OpenAPI document, so every
 * resource added later is held to the same checks.
 */

let db: TestDatabase;
let api: TestApi;
let org: TestOrg;
let token: string;
let lists: { path: string; params: string[] }[];

beforeAll(async () => {
  db = await createTestDatabase({ RATE_LIMIT_UNLIMITED_PER_MIN: '0' });
  api = await buildTestApi(db.config);
  org = await createOrg(db.owner, 'unlimited');
  token = await login(api, org);
  const doc = (await api.sut.inject({ method: 'GET', url: '/v1/openapi.json' })).json() as {
    paths: Record<string, { get?: { parameters?: { in: string; name: string }[] } }>;
  };
  lists = Object.entries(doc.paths)
    .filter(([path, ops]) => !path.includes('{') && ops.get?.parameters?.some((p) => p.name === 'cursor'))
    .map(([path, ops]) => ({ path, params: ops.get!.parameters!.filter((p) => p.in === 'query').map((p) => p.name) }));
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

const get = (url: string) => api.sut.inject({ method: 'GET', url, headers: bearer(token) });
const cursorOf = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Every answer that is not a 4xx in the error shape, as `status url`, so a failure names them all. */
async function non4xx(urls: string[]): Promise<string[]> {
  const wrong: string[] = [];
  for (const url of urls) {
    const res = await get(url);
    const shaped = res.statusCode >= 400 && res.statusCode < 500 && typeof res.json().error?.code === 'string';
    if (!shaped) wrong.push(`${res.statusCode} ${url}`);
  }
  return wrong;
}

describe('list query strings', () => {
  it('covers every list resource', () => {
    expect(lists.length).toBeGreaterThanOrEqual(15);
    expect(lists.map((l) => l.path)).toEqual(expect.arrayContaining(['/v1/work-orders', '/v1/gps-events', '/v1/events', '/v1/users']));
  });

  it('answer 400 naming the cursor for cursors whose sort names an inherited property', async () => {
    for (const { path } of lists) {
      for (const field of ['constructor', '__proto__', 'toString', '-hasOwnProperty']) {
        const res = await get(`${path}?cursor=${cursorOf({ s: field, v: 'x', i: 'y' })}`);
        expect(res.statusCode, `${path} sort ${field}`).toBe(400);
        expect(errorOf(res)).toMatchObject({ code: 'bad_request', issues: [{ path: 'cursor' }] });
      }
    }
  });

  it('answer 400 for unknown sort fields, inherited ones included', async () => {
    for (const { path } of lists) {
      for (const sort of ['constructor', '__proto__', 'no_such_field', '-toString']) {
        const res = await get(`${path}?sort=${sort}`);
        expect(res.statusCode, `${path} sort=${sort}`).toBe(400);
        expect(errorOf(res).issues[0]?.path).toBe('sort');
      }
    }
  });

  it('answer 4xx for cursors carrying values PostgreSQL rejects', async () => {
    const cursors = [
      { s: 'created_at', v: 'a\u0000b', i: '00000000-0000-4000-8000-000000000000' },
      { s: '-created_at', v: '0000-01-01T00:00:00Z', i: '00000000-0000-4000-8000-000000000000' },
      { s: 'created_at', v: '2024-01-01T00:00:00Z', i: 'not an id\u0000' },
      { s: 'created_at', v: '99999999999999999999999999', i: '1e308' },
    ];
    const urls = lists.flatMap(({ path }) => cursors.map((c) => `${path}?cursor=${cursorOf(c)}`));
    expect(await non4xx(urls)).toEqual([]);
  });

  it('answer 4xx for NUL characters, out-of-range dates and huge numbers in any parameter', async () => {
    const values = ['a\u0000b', '\u0000', '0000-01-01T00:00:00Z', '10000-01-01T00:00:00Z', 'infinity', '-infinity',
      '99999999999999999999999', '1e308', '-1'];
    const urls = lists.flatMap(({ path, params }) =>
      params.filter((p) => p !== 'cursor' && p !== 'limit').flatMap((param) => values.map((v) => `${path}?${param}=${encodeURIComponent(v)}`)));
    // Every parameter that is not valid gives 4xx; the valid ones (a huge limit is capped) are not asked here.
    const wrong = [];
    for (const url of urls) {
      const res = await get(url);
      if (res.statusCode >= 500) wrong.push(`${res.statusCode} ${url}`);
      else if (res.statusCode >= 400) expect(typeof errorOf(res).code).toBe('string');
    }
    expect(wrong).toEqual([]);
  });
});

describe('bodies', () => {
  const post = (url: string, payload: object) => api.sut.inject({ method: 'POST', url, payload, headers: bearer(token) });

  it('with NUL characters in strings answer 400 and create nothing', async () => {
    const bodies: [string, object][] = [
      ['/v1/clients', { name: 'Acme\u0000' }],
      ['/v1/devices', { name: 'tracker\u0000', kind: 'tracker' }],
      ['/v1/employees', { name: 'Ann', email: 'ann@example.com', badge_code: '\u0000' }],
      ['/v1/work-orders', { title: 'Fix\u0000it' }],
      ['/v1/inspection-templates', { name: 'Daily', items: [{ key: 'a\u0000', label: 'A', type: 'check' }] }],
    ];
    for (const [url, body] of bodies) {
      const res = await post(url, body);
      expect(res.statusCode, url).toBe(400);
      expect(errorOf(res).code).toBe('bad_request');
      const list = await get(url);
      expect(list.json().meta.total, url).toBe(0);
    }
  });

  it('with dates PostgreSQL rejects and numbers out of range answer 400', async () => {
    for (const scheduled_start of ['0000-01-01T00:00:00Z', '10000-01-01T00:00:00Z', 'infinity']) {
      const res = await post('/v1/work-orders', { title: 'Dated', scheduled_start });
      expect(res.statusCode, scheduled_start).toBe(400);
    }
    const warehouse = (await post('/v1/warehouses', { name: 'Main' })).json().data;
    const item = (await post('/v1/inventory', { sku: 'SKU-1', name: 'Filter' })).json().data;
    for (const quantity of [1e308, 2 ** 53, 2 ** 31]) {
      const res = await post(`/v1/inventory/${item.id}/movements`, { kind: 'receive', warehouse_id: warehouse.id, quantity, unit_cost: 1 });
      expect(res.statusCode, String(quantity)).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, String(quantity)).toBeLessThan(500);
    }
  });
});
