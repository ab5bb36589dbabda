import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';

// Two API apps on one database, each with its own pool and key cache: two API processes.
let db: TestDatabase;
let first: TestApi;
let second: TestApi;
let org: TestOrg;
let adminToken: string;

beforeAll(async () => {
  db = await createTestDatabase();
  first = await buildTestApi(db.config);
  second = await buildTestApi(db.config);
  org = await createOrg(db.owner, 'unlimited');
  adminToken = await login(first, org);
});

afterAll(async () => {
  await first?.close();
  await second?.close();
  await db?.drop();
});

const inject = (api: TestApi, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, token: string, payload?: object) =>
  api.sut.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });

async function createKey(token: string): Promise<{ id: string; key: string }> {
  const res = await inject(first, 'POST', '/v1/api-keys', token, { name: 'cached' });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data;
}

describe('API keys used over and over (cached briefly)', () => {
  it('answers 401 at once in the process that revoked the key, right after heavy use', async () => {
    const { id, key } = await createKey(adminToken);
    const uses = await Promise.all(Array.from({ length: 20 }, () => inject(first, 'GET', '/v1/devices?limit=5', key)));
    expect(uses.map((r) => r.statusCode)).toEqual(Array(20).fill(200));

    expect((await inject(first, 'DELETE', `/v1/api-keys/${id}`, adminToken)).statusCode).toBe(204);
    const after = await inject(first, 'GET', '/v1/devices?limit=5', key);
    expect(after.statusCode).toBe(401);
    expect(errorOf(after).code).toBe('unauthorized');
  });

  it('answers 401 in another API process too, within about a second of the revocation', async () => {
    const { id, key } = await createKey(adminToken);
    expect((await inject(second, 'GET', '/v1/me', key)).statusCode).toBe(200);

    expect((await inject(first, 'DELETE', `/v1/api-keys/${id}`, adminToken)).statusCode).toBe(204);
    await expect.poll(async () => (await inject(second, 'GET', '/v1/me', key)).statusCode, { timeout: 5000, interval: 100 }).toBe(401);
    // And stays revoked.
    expect((await inject(second, 'GET', '/v1/me', key)).statusCode).toBe(401);
  });

  it('stops the keys of a user at once when that user is disabled', async () => {
    const email = `ops-${Date.now()}@example.com`;
    const created = await inject(first, 'POST', '/v1/users', adminToken, { email, password: 'another long password', role: 'admin' });
    expect(created.statusCode, created.body).toBe(201);
    const userToken = await login(first, org, email, 'another long password');
    const { key } = await createKey(userToken);
    expect((await inject(first, 'GET', '/v1/me', key)).statusCode).toBe(200);

    const disabled = await inject(first, 'PATCH', `/v1/users/${created.json().data.id}`, adminToken, { disabled: true });
    expect(disabled.statusCode, disabled.body).toBe(200);
    expect((await inject(first, 'GET', '/v1/me', key)).statusCode).toBe(401);
  });

  it('never accepts a forged key, however often it is tried', async () => {
    const { key } = await createKey(adminToken);
    const forged = key.slice(0, -4) + (key.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    for (let i = 0; i < 3; i++) expect((await inject(first, 'GET', '/v1/me', forged)).statusCode).toBe(401);
    expect((await inject(first, 'GET', '/v1/me', key)).statusCode).toBe(200);
  });
});

describe('list totals (counted in the page query)', () => {
  it('reports the same total on the first page, a cursor page, past the end and for a filter matching nothing', async () => {
    for (let i = 0; i < 7; i++) {
      expect((await inject(first, 'POST', '/v1/devices', adminToken, { name: `counted ${i}`, kind: 'attendance' })).statusCode).toBe(201);
    }
    const page1 = await inject(first, 'GET', '/v1/devices?kind=attendance&limit=3', adminToken);
    expect(page1.json().meta).toMatchObject({ total: 7, limit: 3, offset: 0 });
    expect(page1.json().data).toHaveLength(3);
    const cursor = page1.json().meta.next_cursor as string;
    const page2 = await inject(first, 'GET', `/v1/devices?kind=attendance&limit=3&cursor=${cursor}`, adminToken);
    expect(page2.json().meta.total).toBe(7);
    expect(page2.json().data[0].id).not.toBe(page1.json().data[2].id);
    const past = await inject(first, 'GET', '/v1/devices?kind=attendance&limit=3&offset=50', adminToken);
    expect(past.json()).toMatchObject({ data: [], meta: { total: 7, offset: 50, next_cursor: null } });
    const none = await inject(first, 'GET', '/v1/devices?kind=attendance&status=disabled', adminToken);
    expect(none.json()).toMatchObject({ data: [], meta: { total: 0, next_cursor: null } });
  });
});
