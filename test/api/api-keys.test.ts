import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateTenant } from '../../services/shared/tenants.js';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';

let db: TestDatabase;
let api: TestApi;
let org: TestOrg;
let adminToken: string;

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config);
  org = await createOrg(db.owner, 'unlimited');
  adminToken = await login(api, org);
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

const inject = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, token: string, payload?: object) =>
  api.sut.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });

async function createKey(token: string, body: object = { name: 'integration' }) {
  const res = await inject('POST', '/v1/api-keys', token, body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data as { id: string; key: string; name: string; scopes: string[]; prefix: string };
}

describe('API keys', () => {
  it('creates a key shown once, which then authenticates, is listed without the key, and dies on revoke', async () => {
    const created = await createKey(adminToken, { name: 'work orders sync' });
    expect(created.key).toMatch(/^fo_/);
    expect(created.key.startsWith(created.prefix)).toBe(true);
    expect(created.name).toBe('work orders sync');

    const who = await inject('GET', '/v1/me', created.key);
    expect(who.statusCode).toBe(200);
    expect(who.json().data).toMatchObject({ kind: 'api_key', tenant_id: org.id, api_key: { id: created.id, name: 'work orders sync' } });

    const list = await inject('GET', '/v1/api-keys', adminToken);
    expect(list.statusCode).toBe(200);
    const listed = list.json().data.find((k: { id: string }) => k.id === created.id);
    expect(listed).toMatchObject({ id: created.id, prefix: created.prefix, revoked_at: null });
    expect(listed.last_used_at).not.toBeNull();
    expect(listed).not.toHaveProperty('key');
    expect(list.body).not.toContain(created.key);
    const one = await inject('GET', `/v1/api-keys/${created.id}`, adminToken);
    expect(one.json().data).not.toHaveProperty('key');

    const revoke = await inject('DELETE', `/v1/api-keys/${created.id}`, adminToken);
    expect(revoke.statusCode).toBe(204);
    expect(revoke.body).toBe('');
    const after = await inject('GET', '/v1/me', created.key);
    expect(after.statusCode).toBe(401);
    expect(errorOf(after).code).toBe('unauthorized');

    const revokedList = await inject('GET', '/v1/api-keys?status=revoked', adminToken);
    expect(revokedList.json().data.map((k: { id: string }) => k.id)).toContain(created.id);
    expect(revokedList.json().data[0].revoked_at).not.toBeNull();
  });

  it('gives a key all of its creator\'s scopes by default, or the subset asked for', async () => {
    const all = await createKey(adminToken);
    const who = await inject('GET', '/v1/me', adminToken);
    expect(all.scopes.sort()).toEqual([...who.json().data.scopes].sort());

    const narrow = await createKey(adminToken, { name: 'read devices', scopes: ['devices.read'] });
    expect(narrow.scopes).toEqual(['devices.read']);
    expect((await inject('GET', '/v1/devices', narrow.key)).statusCode).toBe(200);
    // A key with a narrowed scope doing a write: 403.
    const write = await inject('POST', '/v1/devices', narrow.key, { name: 'x', kind: 'tracker' });
    expect(write.statusCode).toBe(403);
    expect(errorOf(write)).toMatchObject({ code: 'forbidden', message: 'this needs the devices.write scope' });
    // A key cannot mint a key with more than it holds.
    const escalate = await inject('POST', '/v1/api-keys', narrow.key, { name: 'x' });
    expect(escalate.statusCode).toBe(403);
  });

  it('refuses scopes the creator does not hold (403) and unknown scope names (400)', async () => {
    const dispatcher = await inject('POST', '/v1/users', adminToken, { email: 'dispatch@example.com', password: 'dispatcher pass', role: 'dispatcher' });
    expect(dispatcher.statusCode).toBe(201);
    const viewer = await inject('POST', '/v1/users', adminToken, { email: 'viewer@example.com', password: 'viewer password', role: 'viewer' });
    expect(viewer.statusCode).toBe(201);
    const viewerToken = await login(api, org, 'viewer@example.com', 'viewer password');

    // A viewer lacks api_keys.write altogether.
    const denied = await inject('POST', '/v1/api-keys', viewerToken, { name: 'mine' });
    expect(denied.statusCode).toBe(403);

    const narrow = await createKey(adminToken, { name: 'keys only', scopes: ['api_keys.write', 'devices.read'] });
    const tooMuch = await inject('POST', '/v1/api-keys', narrow.key, { name: 'more', scopes: ['devices.read', 'users.write'] });
    expect(tooMuch.statusCode).toBe(403);
    expect(errorOf(tooMuch).message).toContain('users.write');

    const unknown = await inject('POST', '/v1/api-keys', adminToken, { name: 'odd', scopes: ['devices.read', 'everything'] });
    expect(unknown.statusCode).toBe(400);
    expect(errorOf(unknown).issues).toEqual([{ path: 'scopes.1', message: 'everything is not a scope' }]);
  });

  it('stops the keys of a disabled user', async () => {
    const res = await inject('POST', '/v1/users', adminToken, { email: 'keyholder@example.com', password: 'keyholder pass', role: 'admin' });
    const userId = res.json().data.id;
    const token = await login(api, org, 'keyholder@example.com', 'keyholder pass');
    const key = await createKey(token);
    expect((await inject('GET', '/v1/me', key.key)).statusCode).toBe(200);
    expect((await inject('PATCH', `/v1/users/${userId}`, adminToken, { disabled: true })).statusCode).toBe(200);
    expect((await inject('GET', '/v1/me', key.key)).statusCode).toBe(401);
  });

  it('answers 401 for a well-formed key that does not exist', async () => {
    const key = await createKey(adminToken);
    const forged = key.key.slice(0, -4) + (key.key.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect((await inject('GET', '/v1/me', forged)).statusCode).toBe(401);
  });
});

describe('plan gating', () => {
  it('answers 402 on a starter plan without the api add-on: creating a key and using one; sessions still work', async () => {
    const starter = await createOrg(db.owner, 'unlimited');
    const token = await login(api, starter);
    const key = await createKey(token); // made while the plan included API access

    const client = await db.owner.connect();
    await updateTenant(client, starter.id, { plan: 'starter', addons: [] }).finally(() => client.release());
    // Sessions look the plan up through a cache of a few seconds; a fresh app sees the change at once.
    const fresh = await buildTestApi(db.config);
    try {
      const create = await fresh.sut.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(token), payload: { name: 'nope' } });
      expect(create.statusCode).toBe(402);
      expect(errorOf(create).code).toBe('payment_required');

      const use = await fresh.sut.inject({ method: 'GET', url: '/v1/devices', headers: bearer(key.key) });
      expect(use.statusCode).toBe(402);
      expect(errorOf(use).code).toBe('payment_required');

      const session = await fresh.sut.inject({ method: 'GET', url: '/v1/devices', headers: bearer(token) });
      expect(session.statusCode).toBe(200);
      expect((await fresh.sut.inject({ method: 'GET', url: '/v1/api-keys', headers: bearer(token) })).statusCode).toBe(200);
    } finally {
      await fresh.close();
    }
  });

  it('allows API keys on starter and team plans with the api add-on', async () => {
    for (const plan of ['starter', 'team'] as const) {
      const withAddon = await createOrg(db.owner, plan, ['api']);
      const token = await login(api, withAddon);
      const key = await createKey(token);
      const use = await inject('GET', '/v1/me', key.key);
      expect(use.statusCode).toBe(200);
      expect(use.json().data).toMatchObject({ plan, addons: ['api'] });
    }
  });
});

describe('tenant isolation of API keys', () => {
  it('answers 404 for another tenant\'s key on read and revoke, and does not list it', async () => {
    const other = await createOrg(db.owner, 'unlimited');
    const otherToken = await login(api, other);
    const theirs = await createKey(otherToken, { name: 'theirs' });

    expect((await inject('GET', `/v1/api-keys/${theirs.id}`, adminToken)).statusCode).toBe(404);
    const revoke = await inject('DELETE', `/v1/api-keys/${theirs.id}`, adminToken);
    expect(revoke.statusCode).toBe(404);
    expect(errorOf(revoke).code).toBe('not_found');
    const list = await inject('GET', '/v1/api-keys?limit=100', adminToken);
    expect(list.json().data.map((k: { id: string }) => k.id)).not.toContain(theirs.id);
    // Still alive for its owner.
    expect((await inject('GET', '/v1/me', theirs.key)).statusCode).toBe(200);
  });
});
