import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildTestApi, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { waitFor } from '../support/wait.js';

/**
 * Sessions follow their user (docs/design.md, "Reliability and security"): disabling, re-roling, deleting a
 * user or changing their password ends their session tokens — at once in the API process that made the
 * change, within 5 s in every other — and an API key's scopes are its own within its owner's current role's.
 */

// Two API apps on one database, each with its own pool and credential cache: two API processes.
let db: TestDatabase;
let first: TestApi;
let second: TestApi;
let org: TestOrg;
let admin: string;

beforeAll(async () => {
  db = await createTestDatabase({ RATE_LIMIT_UNLIMITED_PER_MIN: '0' });
  first = await buildTestApi(db.config);
  second = await buildTestApi(db.config);
  org = await createOrg(db.owner, 'unlimited');
  admin = await login(first, org);
});

afterAll(async () => {
  await first?.close();
  await second?.close();
  await db?.drop();
});

const inject = (api: TestApi, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, token: string, payload?: object) =>
  api.sut.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });

let userCount = 0;

/** A user made through the API, signed in, and their session already used (and cached) in both processes. */
async function signedInUser(role: 'admin' | 'dispatcher' | 'viewer' = 'dispatcher') {
  const email = `user-${++userCount}-${Date.now()}@example.com`;
  const password = 'a long password';
  const created = await inject(first, 'POST', '/v1/users', admin, { email, password, role });
  expect(created.statusCode, created.body).toBe(201);
  const session = await login(first, org, email, password);
  for (const api of [first, second]) expect((await inject(api, 'GET', '/v1/devices', session)).statusCode).toBe(200);
  return { id: created.json().data.id as string, email, password, session };
}

/**
 * Asserts the session answers 401 at once in the first process and within 5 s in the second, on a route
 * that reads nothing of the user itself (the auth layer decides).
 */
async function expectEnded(session: string): Promise<void> {
  expect((await inject(first, 'GET', '/v1/devices', session)).statusCode).toBe(401);
  const startedMs = Date.now();
  await waitFor(async () => (await inject(second, 'GET', '/v1/devices', session)).statusCode === 401, { timeoutMs: 5_000 });
  expect(Date.now() - startedMs).toBeLessThan(5_000);
  // And it stays ended.
  for (const api of [first, second]) expect((await inject(api, 'GET', '/v1/devices', session)).statusCode).toBe(401);
}

describe('session tokens', () => {
  it('end when their user is disabled, and stay ended when the user is enabled again', async () => {
    const user = await signedInUser();
    expect((await inject(first, 'PATCH', `/v1/users/${user.id}`, admin, { disabled: true })).statusCode).toBe(200);
    await expectEnded(user.session);
    expect((await inject(first, 'PATCH', `/v1/users/${user.id}`, admin, { disabled: false })).statusCode).toBe(200);
    expect((await inject(first, 'GET', '/v1/devices', user.session)).statusCode).toBe(401);
    expect((await inject(first, 'GET', '/v1/me', await login(first, org, user.email, user.password))).statusCode).toBe(200);
  });

  it('end when their user gets another role; a new sign-in carries the new role\'s scopes', async () => {
    const user = await signedInUser('admin');
    expect((await inject(first, 'GET', '/v1/users', user.session)).statusCode).toBe(200);
    expect((await inject(first, 'PATCH', `/v1/users/${user.id}`, admin, { role: 'viewer' })).statusCode).toBe(200);
    await expectEnded(user.session);
    const again = await login(first, org, user.email, user.password);
    expect((await inject(second, 'GET', '/v1/users', again)).statusCode).toBe(403);
    expect((await inject(second, 'GET', '/v1/devices', again)).statusCode).toBe(200);
  });

  it('end when their user\'s password changes, through the other process too', async () => {
    const user = await signedInUser();
    expect((await inject(second, 'PATCH', `/v1/users/${user.id}`, admin, { password: 'another long password' })).statusCode).toBe(200);
    // Here the second process made the change: it answers 401 at once, the first within 5 s.
    expect((await inject(second, 'GET', '/v1/devices', user.session)).statusCode).toBe(401);
    await waitFor(async () => (await inject(first, 'GET', '/v1/devices', user.session)).statusCode === 401, { timeoutMs: 5_000 });
    expect((await inject(first, 'GET', '/v1/me', await login(first, org, user.email, 'another long password'))).statusCode).toBe(200);
  });

  it('end when their user is deleted', async () => {
    const user = await signedInUser();
    expect((await inject(first, 'DELETE', `/v1/users/${user.id}`, admin)).statusCode).toBe(204);
    await expectEnded(user.session);
  });

  it('survive changes that take nothing away (a new name), and other users\' changes', async () => {
    const user = await signedInUser();
    const other = await signedInUser();
    expect((await inject(first, 'PATCH', `/v1/users/${user.id}`, admin, { name: 'Renamed' })).statusCode).toBe(200);
    expect((await inject(first, 'PATCH', `/v1/users/${other.id}`, admin, { disabled: true })).statusCode).toBe(200);
    for (const api of [first, second]) expect((await inject(api, 'GET', '/v1/devices', user.session)).statusCode).toBe(200);
  });

  it('end when changed outside the API (the database bumps the epoch itself)', async () => {
    const user = await signedInUser();
    const client = await db.owner.connect();
    try {
      await client.query('begin');
      await client.query("select set_config('app.tenant_id', $1, true)", [org.id]);
      await client.query("update users set role = 'viewer' where id = $1", [user.id]);
      await client.query('commit');
    } finally {
      client.release();
    }
    await waitFor(async () => (await inject(first, 'GET', '/v1/devices', user.session)).statusCode === 401, { timeoutMs: 5_000 });
  });
});

describe('API keys of a user whose role changes', () => {
  it('keep only the scopes the owner\'s current role has, in every process', async () => {
    const owner = await signedInUser('admin');
    const created = await inject(first, 'POST', '/v1/api-keys', owner.session, { name: 'integration', scopes: ['devices.read', 'devices.write', 'users.read'] });
    expect(created.statusCode, created.body).toBe(201);
    const { key } = created.json().data as { key: string };
    expect((await inject(second, 'POST', '/v1/devices', key, { name: 'before', kind: 'tracker' })).statusCode).toBe(201);

    expect((await inject(first, 'PATCH', `/v1/users/${owner.id}`, admin, { role: 'viewer' })).statusCode).toBe(200);
    const denied = await inject(first, 'POST', '/v1/devices', key, { name: 'after', kind: 'tracker' });
    expect(denied.statusCode).toBe(403);
    await waitFor(async () => (await inject(second, 'GET', '/v1/users', key)).statusCode === 403, { timeoutMs: 5_000 });
    expect((await inject(second, 'GET', '/v1/devices', key)).statusCode).toBe(200);
    const me = await inject(first, 'GET', '/v1/me', key);
    expect(me.json().data.scopes).toEqual(['devices.read']);

    // Promoted again, the key has its own scopes back (never more than it was given).
    expect((await inject(first, 'PATCH', `/v1/users/${owner.id}`, admin, { role: 'admin' })).statusCode).toBe(200);
    expect((await inject(first, 'POST', '/v1/devices', key, { name: 'again', kind: 'tracker' })).statusCode).toBe(201);
    expect((await inject(first, 'GET', '/v1/me', key)).json().data.scopes.sort()).toEqual(['devices.read', 'devices.write', 'users.read']);
  });
});
