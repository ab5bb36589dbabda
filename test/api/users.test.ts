import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  org = await createOrg(db.owner, 'team');
  adminToken = await login(api, org);
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

const inject = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, token: string, payload?: unknown) =>
  api.sut.inject({ method, url, headers: bearer(token), ...(payload !== undefined ? { payload: payload as object } : {}) });

describe('/v1/users', () => {
  it('creates, reads, updates and deletes a user', async () => {
    const created = await inject('POST', '/v1/users', adminToken, { email: 'Ada@Example.com', password: 'difference engine', name: 'Ada', role: 'dispatcher' });
    expect(created.statusCode).toBe(201);
    const user = created.json().data;
    expect(user).toMatchObject({ email: 'Ada@Example.com', name: 'Ada', role: 'dispatcher', disabled: false, disabled_at: null });
    expect(user).not.toHaveProperty('password');
    expect(user).not.toHaveProperty('password_hash');
    expect(new Date(user.created_at).toISOString()).toBe(user.created_at);

    const read = await inject('GET', `/v1/users/${user.id}`, adminToken);
    expect(read.json()).toEqual({ data: user });

    const patched = await inject('PATCH', `/v1/users/${user.id}`, adminToken, { name: 'Ada L.', role: 'viewer' });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().data).toMatchObject({ id: user.id, name: 'Ada L.', role: 'viewer' });

    const password = await inject('PATCH', `/v1/users/${user.id}`, adminToken, { password: 'analytical engine' });
    expect(password.statusCode).toBe(200);
    await expect(login(api, org, 'ada@example.com', 'analytical engine')).resolves.toBeTypeOf('string');

    const deleted = await inject('DELETE', `/v1/users/${user.id}`, adminToken);
    expect(deleted.statusCode).toBe(204);
    expect((await inject('GET', `/v1/users/${user.id}`, adminToken)).statusCode).toBe(404);
    expect((await inject('DELETE', `/v1/users/${user.id}`, adminToken)).statusCode).toBe(404);
  });

  it('answers 409 conflict for an email already used in the organization, whatever its case', async () => {
    const first = await inject('POST', '/v1/users', adminToken, { email: 'grace@example.com', password: 'cobol rules', role: 'technician' });
    expect(first.statusCode).toBe(201);
    const again = await inject('POST', '/v1/users', adminToken, { email: 'GRACE@example.com', password: 'cobol rules', role: 'viewer' });
    expect(again.statusCode).toBe(409);
    expect(errorOf(again)).toMatchObject({ code: 'conflict', issues: [{ path: 'email', message: 'is already taken' }] });
  });

  it('answers 400 bad_request with every field\'s issue', async () => {
    const res = await inject('POST', '/v1/users', adminToken, { email: 'not-an-email', password: 'short', role: 'owner', shoe_size: 44 });
    expect(res.statusCode).toBe(400);
    const error = errorOf(res);
    expect(error.code).toBe('bad_request');
    expect(error.request_id).toMatch(/^req_/);
    const paths = error.issues.map((i) => i.path).sort();
    expect(paths).toEqual(['email', 'password', 'role', 'shoe_size']);
    expect(error.issues.find((i) => i.path === 'role')?.message).toBe('must be one of admin, dispatcher, technician, viewer');

    const empty = await inject('PATCH', `/v1/users/${crypto.randomUUID()}`, adminToken, {});
    expect(empty.statusCode).toBe(400);

    const badQuery = await inject('GET', '/v1/users?limit=0&sort=password', adminToken);
    expect(badQuery.statusCode).toBe(400);
    expect(errorOf(badQuery).issues.map((i) => i.path).sort()).toEqual(['limit', 'sort']);
  });

  it('answers 400 for malformed JSON and 404 for a path id that is not a uuid', async () => {
    const malformed = await api.sut.inject({
      method: 'POST', url: '/v1/users', headers: { ...bearer(adminToken), 'content-type': 'application/json' }, payload: '{"email":',
    });
    expect(malformed.statusCode).toBe(400);
    expect(errorOf(malformed).code).toBe('bad_request');

    const notUuid = await inject('GET', '/v1/users/12345', adminToken);
    expect(notUuid.statusCode).toBe(404);
    expect(errorOf(notUuid).code).toBe('not_found');
  });

  it('needs users.write to create users: a viewer gets 403', async () => {
    await inject('POST', '/v1/users', adminToken, { email: 'watcher@example.com', password: 'just watching', role: 'viewer' });
    const viewer = await login(api, org, 'watcher@example.com', 'just watching');
    const res = await inject('POST', '/v1/users', viewer, { email: 'x@example.com', password: 'whatever1', role: 'admin' });
    expect(res.statusCode).toBe(403);
    expect(errorOf(res)).toMatchObject({ code: 'forbidden', message: 'this needs the users.write scope' });
    expect((await inject('GET', '/v1/users', viewer)).statusCode).toBe(403);
  });

  it('keeps an admin from deleting or disabling themselves', async () => {
    const me = (await inject('GET', '/v1/me', adminToken)).json().data.user.id;
    expect((await inject('DELETE', `/v1/users/${me}`, adminToken)).statusCode).toBe(409);
    expect((await inject('PATCH', `/v1/users/${me}`, adminToken, { disabled: true })).statusCode).toBe(409);
  });

  it('paginates with limit, offset, sort, filters and a cursor', async () => {
    const paged = await createOrg(db.owner, 'team');
    const token = await login(api, paged);
    for (let i = 0; i < 7; i++) {
      const res = await inject('POST', '/v1/users', token, { email: `tech${i}@example.com`, password: 'password!', name: `Tech ${i}`, role: 'technician' });
      expect(res.statusCode).toBe(201);
    }

    const first = (await inject('GET', '/v1/users?limit=3&sort=email', token)).json();
    expect(first.meta).toMatchObject({ total: 8, limit: 3, offset: 0 });
    expect(first.meta.next_cursor).toEqual(expect.any(String));
    expect(first.data.map((u: { email: string }) => u.email)).toEqual([paged.adminEmail, 'tech0@example.com', 'tech1@example.com']);

    const byOffset = (await inject('GET', '/v1/users?limit=3&offset=3&sort=email', token)).json();
    const byCursor = (await inject('GET', `/v1/users?limit=3&cursor=${first.meta.next_cursor}`, token)).json();
    expect(byCursor.data).toEqual(byOffset.data);
    expect(byOffset.data.map((u: { email: string }) => u.email)).toEqual(['tech2@example.com', 'tech3@example.com', 'tech4@example.com']);

    // Walking the cursor visits every row once, newest first.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { data: { id: string }[]; meta: { next_cursor: string | null } } =
        (await inject('GET', `/v1/users?limit=2&sort=-created_at${cursor ? `&cursor=${cursor}` : ''}`, token)).json();
      seen.push(...page.data.map((u) => u.id));
      cursor = page.meta.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(8);
    expect(new Set(seen).size).toBe(8);

    const filtered = (await inject('GET', '/v1/users?role=admin', token)).json();
    expect(filtered.meta.total).toBe(1);
    expect(filtered.data[0].email).toBe(paged.adminEmail);

    const capped = (await inject('GET', '/v1/users?limit=500', token)).json();
    expect(capped.meta).toMatchObject({ limit: 100, next_cursor: null });

    const wrongSort = await inject('GET', `/v1/users?sort=name&cursor=${first.meta.next_cursor}`, token);
    expect(wrongSort.statusCode).toBe(400);
    const garbage = await inject('GET', '/v1/users?cursor=garbage', token);
    expect(garbage.statusCode).toBe(400);
    expect(errorOf(garbage).issues[0]?.path).toBe('cursor');
  });
});

describe('tenant isolation of users', () => {
  it('answers 404 for another tenant\'s user on read, update and delete, and never lists them', async () => {
    const other = await createOrg(db.owner, 'team');
    const otherToken = await login(api, other);
    const theirs = (await inject('POST', '/v1/users', otherToken, { email: 'theirs@example.com', password: 'their secret', role: 'viewer' })).json().data;

    for (const res of [
      await inject('GET', `/v1/users/${theirs.id}`, adminToken),
      await inject('PATCH', `/v1/users/${theirs.id}`, adminToken, { role: 'admin' }),
      await inject('DELETE', `/v1/users/${theirs.id}`, adminToken),
    ]) {
      expect(res.statusCode).toBe(404);
      expect(errorOf(res).code).toBe('not_found');
    }
    const list = (await inject('GET', '/v1/users?limit=100', adminToken)).json();
    expect(list.data.map((u: { id: string }) => u.id)).not.toContain(theirs.id);
    const stillThere = (await inject('GET', `/v1/users/${theirs.id}`, otherToken)).json().data;
    expect(stillThere.role).toBe('viewer');
  });
});
