import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServicePool } from '../../services/shared/db.js';
import { purgeExpiredIdempotencyKeys } from '../../services/jobs/idempotency-purge.js';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createOrg, type TestOrg } from '../support/factories.js';

/** The REST conventions every resource shares (docs/design.md, "REST conventions"), shown on existing resources. */
let db: TestDatabase;
let api: TestApi;
let org: TestOrg;
let token: string;

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config);
  org = await createOrg(db.owner, 'unlimited');
  token = await login(api, org);
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
const inject = (method: Method, url: string, payload?: object, headers: Record<string, string> = {}) =>
  api.sut.inject({ method, url, headers: { ...bearer(token), ...headers }, ...(payload ? { payload } : {}) });

const countDevices = (name: string) =>
  asTenant(db.owner, org.id, async (c) => Number((await c.query('select count(*) from devices where tenant_id = $1 and name = $2', [org.id, name])).rows[0].count));

describe('ETag and If-Match', () => {
  it('answers the version as the ETag on reads and writes, and bumps it on every change', async () => {
    const created = await inject('POST', '/v1/devices', { name: 'Van', kind: 'tracker' });
    expect(created.statusCode).toBe(201);
    expect(created.headers.etag).toBe('"1"');
    const { id, version } = created.json().data;
    expect(version).toBe(1);

    const read = await inject('GET', `/v1/devices/${id}`);
    expect(read.headers.etag).toBe('"1"');
    const renamed = await inject('PATCH', `/v1/devices/${id}`, { name: 'Van 2' });
    expect(renamed.headers.etag).toBe('"2"');
    expect(renamed.json().data.version).toBe(2);
    const disabled = await inject('POST', `/v1/devices/${id}/disable`);
    expect(disabled.headers.etag).toBe('"3"');
    // Lists carry no ETag: they are not one object.
    expect((await inject('GET', '/v1/devices')).headers.etag).toBeUndefined();
  });

  it('PATCH with a stale If-Match is 409 conflict naming the current version, and writes nothing', async () => {
    const { id } = (await inject('POST', '/v1/devices', { name: 'Crane', kind: 'tracker' })).json().data;
    const first = await inject('PATCH', `/v1/devices/${id}`, { name: 'Crane A' }, { 'if-match': '"1"' });
    expect(first.statusCode).toBe(200);
    expect(first.headers.etag).toBe('"2"');

    const stale = await inject('PATCH', `/v1/devices/${id}`, { name: 'Crane B' }, { 'if-match': '"1"' });
    expect(stale.statusCode).toBe(409);
    expect(errorOf(stale)).toMatchObject({ code: 'conflict', issues: [{ path: 'If-Match', message: expect.stringContaining('"2"') }] });
    expect((await inject('GET', `/v1/devices/${id}`)).json().data).toMatchObject({ name: 'Crane A', version: 2 });

    // A weak tag, one of several, and `*` are understood; a tag that is not ours matches nothing.
    expect((await inject('PATCH', `/v1/devices/${id}`, { name: 'Crane C' }, { 'if-match': '"7", W/"2"' })).statusCode).toBe(200);
    expect((await inject('PATCH', `/v1/devices/${id}`, { name: 'Crane D' }, { 'if-match': '*' })).statusCode).toBe(200);
    expect((await inject('PATCH', `/v1/devices/${id}`, { name: 'Crane E' }, { 'if-match': 'garbage' })).statusCode).toBe(409);
    // A missing object is still 404, If-Match or not.
    expect((await inject('PATCH', `/v1/devices/${randomUUID()}`, { name: 'x' }, { 'if-match': '"1"' })).statusCode).toBe(404);
  });

  it('two writers with the same If-Match: exactly one wins, the other gets 409', async () => {
    const { id } = (await inject('POST', '/v1/geofences', {
      name: 'Yard', kind: 'zone', geometry: { type: 'Point', coordinates: [4.9, 52.3] }, radius_m: 50,
    })).json().data;
    const results = await Promise.all(['North', 'South', 'East', 'West'].map((name) =>
      inject('PATCH', `/v1/geofences/${id}`, { name }, { 'if-match': '"1"' })));
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409, 409, 409]);
    const winner = results.find((r) => r.statusCode === 200)!.json().data.name;
    expect((await inject('GET', `/v1/geofences/${id}`)).json().data).toMatchObject({ name: winner, version: 2 });
  });

  it('DELETE honours If-Match too', async () => {
    const { id } = (await inject('POST', '/v1/devices', { name: 'Old', kind: 'tracker' })).json().data;
    expect((await inject('DELETE', `/v1/devices/${id}`, undefined, { 'if-match': '"9"' })).statusCode).toBe(409);
    expect((await inject('DELETE', `/v1/devices/${id}`, undefined, { 'if-match': '"1"' })).statusCode).toBe(204);
  });

  it('users carry versions too', async () => {
    const user = (await inject('POST', '/v1/users', { email: `u-${randomUUID()}@example.com`, password: 'long enough pw', role: 'viewer' })).json().data;
    expect(user.version).toBe(1);
    expect((await inject('PATCH', `/v1/users/${user.id}`, { name: 'Zed' }, { 'if-match': '"1"' })).headers.etag).toBe('"2"');
    expect((await inject('PATCH', `/v1/users/${user.id}`, { name: 'Zoe' }, { 'if-match': '"1"' })).statusCode).toBe(409);
  });
});

describe('Idempotency-Key', () => {
  it('a repeated POST answers the first result, with the same status and body, and creates nothing more', async () => {
    const key = randomUUID();
    const first = await inject('POST', '/v1/devices', { name: 'Idem 1', kind: 'tracker' }, { 'idempotency-key': key });
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const again = await inject('POST', '/v1/devices', { name: 'Idem 1', kind: 'tracker' }, { 'idempotency-key': key });
    expect(again.statusCode).toBe(201);
    expect(again.body).toBe(first.body);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers.etag).toBe('"1"');
    // The device token is shown again to the retry (the caller may have lost the first answer)…
    expect(again.json().data.token).toBe(first.json().data.token);
    expect(await countDevices('Idem 1')).toBe(1);
    // …but is stored sealed, never in the clear.
    const stored = await asTenant(db.owner, org.id, async (c) =>
      (await c.query('select response, sealed from idempotency_keys where tenant_id = $1 and key = $2', [org.id, key])).rows[0]);
    expect(stored.sealed).toBe(true);
    expect(stored.response.toString('latin1')).not.toContain(first.json().data.token);
  });

  it('identical requests racing create one object, and all of them get its answer', async () => {
    const key = randomUUID();
    const results = await Promise.all(Array.from({ length: 6 }, () =>
      inject('POST', '/v1/devices', { name: 'Raced', kind: 'tracker' }, { 'idempotency-key': key })));
    expect(results.map((r) => r.statusCode)).toEqual(Array(6).fill(201));
    expect(new Set(results.map((r) => r.json().data.id)).size).toBe(1);
    expect(results.filter((r) => r.headers['idempotent-replayed'] === 'true')).toHaveLength(5);
    expect(await countDevices('Raced')).toBe(1);
  });

  it('the same key with another body or route is 409, and keys are per caller', async () => {
    const key = randomUUID();
    expect((await inject('POST', '/v1/devices', { name: 'K1', kind: 'tracker' }, { 'idempotency-key': key })).statusCode).toBe(201);
    const otherBody = await inject('POST', '/v1/devices', { name: 'K2', kind: 'tracker' }, { 'idempotency-key': key });
    expect(otherBody.statusCode).toBe(409);
    expect(errorOf(otherBody)).toMatchObject({ code: 'conflict', issues: [{ path: 'Idempotency-Key' }] });
    const otherRoute = await inject('POST', '/v1/geofences', {
      name: 'F', kind: 'zone', geometry: { type: 'Point', coordinates: [1, 1] }, radius_m: 5,
    }, { 'idempotency-key': key });
    expect(otherRoute.statusCode).toBe(409);
    expect(await countDevices('K2')).toBe(0);

    // Another user of the tenant has keys of their own.
    const email = `dispatch-${randomUUID()}@example.com`;
    await inject('POST', '/v1/users', { email, password: 'long enough pw', role: 'dispatcher' });
    const theirs = await login(api, org, email, 'long enough pw');
    const res = await api.sut.inject({ method: 'POST', url: '/v1/devices', headers: { ...bearer(theirs), 'idempotency-key': key }, payload: { name: 'K3', kind: 'tracker' } });
    expect(res.statusCode).toBe(201);
    expect(res.headers['idempotent-replayed']).toBeUndefined();
  });

  it('a failed request is not remembered: its retry runs again', async () => {
    const key = randomUUID();
    const bad = await inject('POST', '/v1/devices', { name: 'Later', kind: 'tracker', asset_id: randomUUID() }, { 'idempotency-key': key });
    expect(bad.statusCode).toBe(400);
    // A request the schema refuses never reaches the key either.
    expect((await inject('POST', '/v1/devices', { name: '', kind: 'tracker' }, { 'idempotency-key': key })).statusCode).toBe(400);
    const good = await inject('POST', '/v1/devices', { name: 'Later', kind: 'tracker' }, { 'idempotency-key': `${key}-2` });
    expect(good.statusCode).toBe(201);
  });

  it('actions replay too: a repeated rotate-token answers the same token and rotates once', async () => {
    const { id } = (await inject('POST', '/v1/devices', { name: 'Rotor', kind: 'tracker' })).json().data;
    const key = randomUUID();
    const first = await inject('POST', `/v1/devices/${id}/rotate-token`, undefined, { 'idempotency-key': key });
    const again = await inject('POST', `/v1/devices/${id}/rotate-token`, undefined, { 'idempotency-key': key });
    expect(again.body).toBe(first.body);
    expect((await inject('GET', `/v1/devices/${id}`)).json().data.version).toBe(2);
  });

  it('refuses a malformed key with 400', async () => {
    const res = await inject('POST', '/v1/devices', { name: 'x', kind: 'tracker' }, { 'idempotency-key': 'x'.repeat(256) });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).issues).toEqual([{ path: 'Idempotency-Key', message: expect.any(String) }]);
  });

  it('a key is remembered for 24 hours: after that it is a new request, and the purge job removes it', async () => {
    const key = randomUUID();
    const first = await inject('POST', '/v1/devices', { name: 'Aged', kind: 'tracker' }, { 'idempotency-key': key });
    await asTenant(db.owner, org.id, (c) =>
      c.query(`update idempotency_keys set created_at = now() - interval '25 hours' where tenant_id = $1 and key = $2`, [org.id, key]));
    const later = await inject('POST', '/v1/devices', { name: 'Aged', kind: 'tracker' }, { 'idempotency-key': key });
    expect(later.statusCode).toBe(201);
    expect(later.json().data.id).not.toBe(first.json().data.id);
    expect(await countDevices('Aged')).toBe(2);

    // The worker role may delete expired keys of every tenant, and nothing else.
    const fresh = randomUUID();
    await inject('POST', '/v1/devices', { name: 'Fresh', kind: 'tracker' }, { 'idempotency-key': fresh });
    await asTenant(db.owner, org.id, (c) =>
      c.query(`update idempotency_keys set created_at = now() - interval '25 hours' where tenant_id = $1 and key = $2`, [org.id, key]));
    const worker = createServicePool(db.config, 'worker', 1);
    try {
      expect(await purgeExpiredIdempotencyKeys(worker)).toBe(1);
      await expect(worker.query('select key from idempotency_keys')).rejects.toThrow(/permission denied/);
    } finally {
      await worker.end();
    }
    const left = await asTenant(db.owner, org.id, async (c) =>
      (await c.query<{ key: string }>('select key from idempotency_keys where tenant_id = $1 and key = any($2)', [org.id, [key, fresh]])).rows);
    expect(left.map((r) => r.key)).toEqual([fresh]);
  });

  it('documents the write headers in the OpenAPI document', async () => {
    const doc = (await api.sut.inject({ method: 'GET', url: '/v1/openapi.json' })).json();
    const create = doc.paths['/v1/devices'].post.parameters as { name: string; in: string }[];
    expect(create).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'idempotency-key', in: 'header' })]));
    const patch = doc.paths['/v1/devices/{id}'].patch.parameters as { name: string; in: string }[];
    expect(patch).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'if-match', in: 'header' })]));
    for (const path of ['/v1/clients', '/v1/sites', '/v1/employees', '/v1/assets', '/v1/assets/filter-options', '/v1/assets/{id}/history',
      '/v1/assets/{id}/history/{version}/restore', '/v1/assets/{id}/archive', '/v1/work-orders', '/v1/work-orders/{id}',
      '/v1/work-orders/{id}/assign', '/v1/work-orders/{id}/start', '/v1/work-orders/{id}/complete', '/v1/work-orders/{id}/cancel',
      '/v1/work-orders/{id}/hold', '/v1/work-orders/{id}/history']) {
      expect(doc.paths[path], path).toBeDefined();
    }
    expect(doc.paths['/v1/work-orders/{id}/complete'].post.parameters).toEqual(expect.arrayContaining([
      expect.objectContaining({ name: 'idempotency-key' }), expect.objectContaining({ name: 'if-match' }),
    ]));
  });
});
