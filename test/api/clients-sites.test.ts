import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';

let db: TestDatabase;
let api: TestApi;
let org: TestOrg;
let token: string;

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config);
  org = await createOrg(db.owner, 'starter');
  token = await login(api, org);
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
const inject = (method: Method, url: string, payload?: object, as = token, headers: Record<string, string> = {}) =>
  api.sut.inject({ method, url, headers: { ...bearer(as), ...headers }, ...(payload ? { payload } : {}) });
const ids = (res: { json(): { data: { id: string }[] } }) => res.json().data.map((o) => o.id);

async function fence(kind: 'site' | 'zone', as = token): Promise<string> {
  const res = await inject('POST', '/v1/geofences', { name: `${kind} fence`, kind, geometry: { type: 'Point', coordinates: [4.9, 52.37] }, radius_m: 150 }, as);
  expect(res.statusCode).toBe(201);
  return res.json().data.id;
}

describe('/v1/clients', () => {
  it('creates, reads, lists with filters, changes and deletes', async () => {
    const created = await inject('POST', '/v1/clients', { name: 'Acme Quarry', email: 'ops@acme.example', phone: '+31 20 123 4567', address: 'Quarry Road 1, Utrecht' });
    expect(created.statusCode).toBe(201);
    expect(created.headers.etag).toBe('"1"');
    const acme = created.json().data;
    expect(acme).toMatchObject({ name: 'Acme Quarry', email: 'ops@acme.example', phone: '+31 20 123 4567', address: 'Quarry Road 1, Utrecht', version: 1 });
    const bare = (await inject('POST', '/v1/clients', { name: 'Bare Builders' })).json().data;
    expect(bare).toMatchObject({ email: null, phone: null, address: null });

    expect((await inject('GET', `/v1/clients/${acme.id}`)).json().data).toEqual(acme);
    expect(ids(await inject('GET', '/v1/clients?name=QUARR'))).toEqual([acme.id]);
    expect(ids(await inject('GET', '/v1/clients?email=OPS@acme.example'))).toEqual([acme.id]);
    expect(ids(await inject('GET', '/v1/clients?sort=-name'))).toEqual([bare.id, acme.id]);

    const changed = await inject('PATCH', `/v1/clients/${acme.id}`, { phone: null, name: 'Acme Quarries' });
    expect(changed.json().data).toMatchObject({ name: 'Acme Quarries', phone: null, email: 'ops@acme.example', version: 2 });
    expect((await inject('DELETE', `/v1/clients/${bare.id}`)).statusCode).toBe(204);
    expect((await inject('GET', `/v1/clients/${bare.id}`)).statusCode).toBe(404);
  });

  it('answers 400 with issues for invalid input', async () => {
    const res = await inject('POST', '/v1/clients', { name: '', email: 'not an email', vat: 'NL1' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).issues.map((i) => i.path).sort()).toEqual(['email', 'name', 'vat']);
    const { id } = (await inject('POST', '/v1/clients', { name: 'Valid' })).json().data;
    expect((await inject('PATCH', `/v1/clients/${id}`, {})).statusCode).toBe(400);
    expect((await inject('PATCH', `/v1/clients/${id}`, { name: 'x'.repeat(201) })).statusCode).toBe(400);
    expect((await inject('GET', '/v1/clients?sort=email')).statusCode).toBe(400);
    // Text PostgreSQL cannot store (a NUL character) is refused as input, not a server error.
    const nul = await inject('POST', '/v1/clients', { name: 'Bad\u0000Name' });
    expect(nul.statusCode).toBe(400);
    expect(errorOf(nul).code).toBe('bad_request');
    expect((await inject('POST', '/v1/assets', { name: 'x', metadata: { note: 'a\u0000b' } })).statusCode).toBe(400);
  });

  it('refuses to delete a client still named by a site or an asset (409), then allows it', async () => {
    const client = (await inject('POST', '/v1/clients', { name: 'Held' })).json().data;
    const site = (await inject('POST', '/v1/sites', { name: 'Held site', client_id: client.id })).json().data;
    const refused = await inject('DELETE', `/v1/clients/${client.id}`);
    expect(refused.statusCode).toBe(409);
    expect(errorOf(refused).code).toBe('conflict');
    expect((await inject('GET', `/v1/clients/${client.id}`)).statusCode).toBe(200);
    await inject('PATCH', `/v1/sites/${site.id}`, { client_id: null });
    const asset = (await inject('POST', '/v1/assets', { name: 'Held asset', client_id: client.id })).json().data;
    expect((await inject('DELETE', `/v1/clients/${client.id}`)).statusCode).toBe(409);
    await inject('PATCH', `/v1/assets/${asset.id}`, { client_id: null });
    expect((await inject('DELETE', `/v1/clients/${client.id}`)).statusCode).toBe(204);
  });

  it('pages to the edges', async () => {
    const other = await createOrg(db.owner);
    const t = await login(api, other);
    for (let i = 0; i < 5; i++) await inject('POST', '/v1/clients', { name: `C${i}` }, t);
    const first = (await inject('GET', '/v1/clients?limit=2', undefined, t)).json();
    expect(first.meta).toMatchObject({ total: 5, limit: 2, offset: 0 });
    const second = (await inject('GET', `/v1/clients?limit=2&cursor=${first.meta.next_cursor}`, undefined, t)).json();
    const third = (await inject('GET', `/v1/clients?limit=2&cursor=${second.meta.next_cursor}`, undefined, t)).json();
    expect([...first.data, ...second.data, ...third.data].map((c: { name: string }) => c.name)).toEqual(['C0', 'C1', 'C2', 'C3', 'C4']);
    expect(third.meta.next_cursor).toBeNull();
    expect((await inject('GET', '/v1/clients?offset=4', undefined, t)).json().data.map((c: { name: string }) => c.name)).toEqual(['C4']);
    expect((await inject('GET', '/v1/clients?offset=9', undefined, t)).json()).toMatchObject({ data: [], meta: { total: 5 } });
  });
});

describe('/v1/sites', () => {
  it('creates a site with a location and its own site geofence; lists by client and geofence', async () => {
    const client = (await inject('POST', '/v1/clients', { name: 'Harbour Co' })).json().data;
    const fenceId = await fence('site');
    const created = await inject('POST', '/v1/sites', {
      name: 'Dock 7', client_id: client.id, address: 'Pier 7', location: { lat: 52.37, lon: 4.9 }, geofence_id: fenceId,
    });
    expect(created.statusCode).toBe(201);
    const site = created.json().data;
    expect(site).toMatchObject({ name: 'Dock 7', client_id: client.id, address: 'Pier 7', location: { lat: 52.37, lon: 4.9 }, geofence_id: fenceId, version: 1 });
    const plain = (await inject('POST', '/v1/sites', { name: 'Yard' })).json().data;
    expect(plain).toMatchObject({ client_id: null, location: null, geofence_id: null });

    expect(ids(await inject('GET', `/v1/sites?client_id=${client.id}`))).toEqual([site.id]);
    expect(ids(await inject('GET', `/v1/sites?geofence_id=${fenceId}`))).toEqual([site.id]);
    expect(ids(await inject('GET', '/v1/sites?name=dock'))).toEqual([site.id]);

    const moved = await inject('PATCH', `/v1/sites/${site.id}`, { location: { lat: 52.38, lon: 4.91 } }, token, { 'if-match': '"1"' });
    expect(moved.json().data).toMatchObject({ location: { lat: 52.38, lon: 4.91 }, version: 2 });
    expect((await inject('PATCH', `/v1/sites/${site.id}`, { location: null })).json().data.location).toBeNull();
  });

  it('a site\'s geofence must be a site fence of this tenant, owned by no other site', async () => {
    const zone = await fence('zone');
    const wrongKind = await inject('POST', '/v1/sites', { name: 'x', geofence_id: zone });
    expect(wrongKind.statusCode).toBe(400);
    expect(errorOf(wrongKind).issues).toEqual([{ path: 'geofence_id', message: "no geofence of kind 'site' with this id" }]);
    const owned = await fence('site');
    expect((await inject('POST', '/v1/sites', { name: 'first', geofence_id: owned })).statusCode).toBe(201);
    const taken = await inject('POST', '/v1/sites', { name: 'second', geofence_id: owned });
    expect(taken.statusCode).toBe(409);
    expect(errorOf(taken).issues).toEqual([{ path: 'geofence_id', message: 'belongs to another site' }]);

    const other = await createOrg(db.owner);
    const theirs = await fence('site', await login(api, other));
    const res = await inject('POST', '/v1/sites', { name: 'x', geofence_id: theirs, client_id: randomUUID(), location: { lat: 91, lon: 0 } });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).issues.map((i) => i.path)).toEqual(['location.lat']);
    const refs = await inject('POST', '/v1/sites', { name: 'x', geofence_id: theirs, client_id: randomUUID() });
    expect(errorOf(refs).issues.map((i) => i.path).sort()).toEqual(['client_id', 'geofence_id']);
  });

  it('deleting the geofence leaves the site without one; deleting a site clears the devices at it; work orders hold it (409)', async () => {
    const fenceId = await fence('site');
    const site = (await inject('POST', '/v1/sites', { name: 'Gate', geofence_id: fenceId })).json().data;
    expect((await inject('DELETE', `/v1/geofences/${fenceId}`)).statusCode).toBe(204);
    expect((await inject('GET', `/v1/sites/${site.id}`)).json().data).toMatchObject({ geofence_id: null, version: 2 });

    const clock = (await inject('POST', '/v1/devices', { name: 'Gate clock', kind: 'attendance', site_id: site.id })).json().data;
    const order = (await inject('POST', '/v1/work-orders', { title: 'Fix the gate', site_id: site.id })).json().data;
    expect((await inject('DELETE', `/v1/sites/${site.id}`)).statusCode).toBe(409);
    await inject('PATCH', `/v1/work-orders/${order.id}`, { site_id: null });
    expect((await inject('DELETE', `/v1/sites/${site.id}`)).statusCode).toBe(204);
    expect((await inject('GET', `/v1/devices/${clock.id}`)).json().data.site_id).toBeNull();
  });

  it('a device\'s site_id names a site, or a site geofence as before; the site filter finds both', async () => {
    const fenceId = await fence('site');
    const site = (await inject('POST', '/v1/sites', { name: 'Depot', geofence_id: fenceId })).json().data;
    const bySite = (await inject('POST', '/v1/devices', { name: 'clock A', kind: 'attendance', site_id: site.id })).json().data;
    const byFence = (await inject('POST', '/v1/devices', { name: 'clock B', kind: 'attendance', site_id: fenceId })).json().data;
    expect(bySite.site_id).toBe(site.id);
    expect(byFence.site_id).toBe(fenceId);
    expect(ids(await inject('GET', `/v1/devices?site_id=${site.id}`)).sort()).toEqual([bySite.id, byFence.id].sort());
    expect(ids(await inject('GET', `/v1/devices?site_id=${fenceId}`))).toEqual([byFence.id]);
    // A zone is no site.
    const zone = await fence('zone');
    const res = await inject('POST', '/v1/devices', { name: 'clock C', kind: 'attendance', site_id: zone });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).issues[0]!.path).toBe('site_id');
  });
});

describe('access', () => {
  it('another tenant\'s clients and sites are 404; scopes decide who may write', async () => {
    const client = (await inject('POST', '/v1/clients', { name: 'Private' })).json().data;
    const site = (await inject('POST', '/v1/sites', { name: 'Private site' })).json().data;
    const other = await createOrg(db.owner);
    const t = await login(api, other);
    for (const url of [`/v1/clients/${client.id}`, `/v1/sites/${site.id}`]) {
      expect((await inject('GET', url, undefined, t)).statusCode).toBe(404);
      expect((await inject('PATCH', url, { name: 'mine' }, t)).statusCode).toBe(404);
      expect((await inject('DELETE', url, undefined, t)).statusCode).toBe(404);
    }
    expect((await inject('GET', '/v1/clients', undefined, t)).json().data).toEqual([]);

    const email = `tech-${randomUUID()}@example.com`;
    await inject('POST', '/v1/users', { email, password: 'tech password', role: 'technician' });
    const tech = await login(api, org, email, 'tech password');
    expect((await inject('GET', `/v1/clients/${client.id}`, undefined, tech)).statusCode).toBe(200);
    expect((await inject('GET', `/v1/sites/${site.id}`, undefined, tech)).statusCode).toBe(200);
    const denied = await inject('POST', '/v1/clients', { name: 'x' }, tech);
    expect(denied.statusCode).toBe(403);
    expect(errorOf(denied).message).toContain('clients.write');
    expect((await inject('PATCH', `/v1/sites/${site.id}`, { name: 'x' }, tech)).statusCode).toBe(403);
  });
});
