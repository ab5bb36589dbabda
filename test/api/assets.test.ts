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
  api = await buildTestApi(db.config);
  org = await createOrg(db.owner, 'team');
  token = await login(api, org);
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
const inject = (method: Method, url: string, payload?: object, as = token, headers: Record<string, string> = {}) =>
  api.sut.inject({ method, url, headers: { ...bearer(as), ...headers }, ...(payload ? { payload } : {}) });
const names = (res: { json(): { data: { name: string }[] } }) => res.json().data.map((a) => a.name);

async function tracker(as = token): Promise<string> {
  const res = await inject('POST', '/v1/devices', { name: `tracker ${randomUUID().slice(0, 4)}`, kind: 'tracker' }, as);
  expect(res.statusCode).toBe(201);
  return res.json().data.id;
}

/** The device's last position, as ingest keeps it. */
async function positionDevice(tenantId: string, deviceId: string, lon: number, lat: number): Promise<void> {
  await asTenant(db.owner, tenantId, (c) => c.query(
    `insert into device_state (device_id, tenant_id, last_seen_at, last_fix_ts, lat, lon, accuracy_m) values ($1, $2, now(), now(), $3, $4, 5)
     on conflict (device_id) do update set lat = excluded.lat, lon = excluded.lon`,
    [deviceId, tenantId, lat, lon],
  ));
}

describe('/v1/assets', () => {
  it('creates an asset with its tracker, reads, lists and changes it; the device follows the link', async () => {
    const client = (await inject('POST', '/v1/clients', { name: 'Quarry Ltd' })).json().data;
    const device = await tracker();
    const created = await inject('POST', '/v1/assets', {
      name: 'Excavator 7', make: 'CAT', model: '320', serial: 'CAT0320X123', client_id: client.id, device_id: device, state: 'needs_service',
      metadata: { colour: 'yellow' },
    });
    expect(created.statusCode).toBe(201);
    expect(created.headers.etag).toBe('"1"');
    const asset = created.json().data;
    expect(asset).toMatchObject({
      name: 'Excavator 7', make: 'CAT', model: '320', serial: 'CAT0320X123', client_id: client.id, device_id: device,
      state: 'needs_service', metadata: { colour: 'yellow' }, status: 'active', archived_at: null, last_position: null, version: 1,
    });
    expect((await inject('GET', `/v1/devices/${device}`)).json().data.asset_id).toBe(asset.id);

    await positionDevice(org.id, device, 4.9, 52.37);
    const read = (await inject('GET', `/v1/assets/${asset.id}`)).json().data;
    expect(read).toMatchObject({ last_position: { lat: 52.37, lon: 4.9, accuracy_m: 5 }, last_seen_at: expect.any(String) });

    // Another tracker replaces the first: the old one is unlinked.
    const second = await tracker();
    const moved = await inject('PATCH', `/v1/assets/${asset.id}`, { device_id: second, state: 'operational' });
    expect(moved.json().data).toMatchObject({ device_id: second, state: 'operational', version: 2, last_position: null });
    expect((await inject('GET', `/v1/devices/${device}`)).json().data.asset_id).toBeNull();
    expect((await inject('GET', `/v1/devices/${second}`)).json().data.asset_id).toBe(asset.id);
    expect((await inject('PATCH', `/v1/assets/${asset.id}`, { device_id: null })).json().data.device_id).toBeNull();
    expect((await inject('GET', `/v1/devices/${second}`)).json().data.asset_id).toBeNull();
  });

  it('refuses a device of another tenant (400), one tracking another asset or disabled (409)', async () => {
    const other = await createOrg(db.owner);
    const theirs = await tracker(await login(api, other));
    const res = await inject('POST', '/v1/assets', { name: 'x', device_id: theirs, client_id: randomUUID() });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).issues.map((i) => i.path)).toEqual(['client_id']);
    expect(errorOf(await inject('POST', '/v1/assets', { name: 'x', device_id: theirs })).issues.map((i) => i.path)).toEqual(['device_id']);

    const device = await tracker();
    await inject('POST', '/v1/assets', { name: 'Holder', device_id: device });
    const taken = await inject('POST', '/v1/assets', { name: 'Taker', device_id: device });
    expect(taken.statusCode).toBe(409);
    expect(errorOf(taken).issues[0]!.path).toBe('device_id');
    expect(names(await inject('GET', '/v1/assets?name=Taker'))).toEqual([]);

    const disabled = await tracker();
    await inject('POST', `/v1/devices/${disabled}/disable`);
    expect((await inject('POST', '/v1/assets', { name: 'x', device_id: disabled })).statusCode).toBe(409);
  });

  it('validates: 400 with issues', async () => {
    const res = await inject('POST', '/v1/assets', { make: 'x'.repeat(101), state: 'broken', year: 2020 });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).issues.map((i) => i.path).sort()).toEqual(['make', 'name', 'state', 'year']);
    expect((await inject('GET', '/v1/assets?state=broken&zone=nowhere')).statusCode).toBe(400);
    expect(errorOf(await inject('GET', `/v1/assets?zone=${randomUUID()}`)).issues).toEqual([{ path: 'zone', message: 'no geofence with this id' }]);
  });
});

describe('filters', () => {
  it('by make, model, client, state, status, serial and GPS zone; filter-options lists what is in use', async () => {
    const other = await createOrg(db.owner, 'team');
    const t = await login(api, other);
    const as = (method: Method, url: string, payload?: object) => inject(method, url, payload, t);
    const quarry = (await as('POST', '/v1/clients', { name: 'Quarry' })).json().data.id;
    const port = (await as('POST', '/v1/clients', { name: 'Port' })).json().data.id;
    const make = async (body: object) => (await as('POST', '/v1/assets', body)).json().data.id as string;
    const trackerA = await tracker(t);
    const trackerB = await tracker(t);
    const a = await make({ name: 'A', make: 'CAT', model: '320', client_id: quarry, device_id: trackerA });
    const b = await make({ name: 'B', make: 'cat', model: '336', client_id: port, state: 'under_repair', serial: 'SN-B', device_id: trackerB });
    await make({ name: 'C', make: 'Volvo', model: 'EC220', state: 'out_of_service' });
    const archived = await make({ name: 'D', make: 'Komatsu', model: 'PC210', client_id: port });
    await as('POST', `/v1/assets/${archived}/archive`);
    const list = (query: string) => as('GET', `/v1/assets?${query}`);

    expect(names(await list(''))).toEqual(['A', 'B', 'C']);
    expect(names(await list('make=CAT'))).toEqual(['A', 'B']);
    expect(names(await list('model=ec220'))).toEqual(['C']);
    expect(names(await list(`client_id=${port}`))).toEqual(['B']);
    expect(names(await list(`client_id=${port}&status=all`))).toEqual(['B', 'D']);
    expect(names(await list('status=archived'))).toEqual(['D']);
    expect(names(await list('state=under_repair'))).toEqual(['B']);
    expect(names(await list('serial=SN-B'))).toEqual(['B']);
    expect(names(await list(`device_id=${trackerA}`))).toEqual(['A']);
    expect(names(await list('sort=-model&make=cat'))).toEqual(['B', 'A']);
    expect(names(await list('sort=-name'))).toEqual(['C', 'B', 'A']);

    // A in the yard, B a kilometre away; C has no position at all.
    await positionDevice(other.id, trackerA, 4.9001, 52.3701);
    await positionDevice(other.id, trackerB, 4.915, 52.37);
    const yard = (await as('POST', '/v1/geofences', {
      name: 'Yard', kind: 'zone',
      geometry: { type: 'Polygon', coordinates: [[[4.899, 52.369], [4.901, 52.369], [4.901, 52.371], [4.899, 52.371], [4.899, 52.369]]] },
    })).json().data.id;
    const around = (await as('POST', '/v1/geofences', { name: 'Around B', kind: 'zone', geometry: { type: 'Point', coordinates: [4.915, 52.3701] }, radius_m: 50 })).json().data.id;
    expect(names(await list(`zone=${yard}`))).toEqual(['A']);
    expect(names(await list(`zone=${around}`))).toEqual(['B']);
    expect(names(await list(`zone=${around}&make=volvo`))).toEqual([]);
    // Another tenant's fence is no zone here.
    const foreign = (await inject('POST', '/v1/geofences', { name: 'F', kind: 'zone', geometry: { type: 'Point', coordinates: [4.9, 52.37] }, radius_m: 5000 })).json().data.id;
    expect((await list(`zone=${foreign}`)).statusCode).toBe(400);

    const options = await as('GET', '/v1/assets/filter-options');
    expect(options.statusCode).toBe(200);
    expect(options.json().data).toEqual({
      makes: ['CAT', 'cat', 'Volvo'],
      models: ['320', '336', 'EC220'],
      clients: [{ id: port, name: 'Port' }, { id: quarry, name: 'Quarry' }],
      states: ['operational', 'out_of_service', 'under_repair'],
    });
  });

  it('pages to the edges', async () => {
    const other = await createOrg(db.owner);
    const t = await login(api, other);
    for (let i = 0; i < 4; i++) await inject('POST', '/v1/assets', { name: `Unit ${i}` }, t);
    const first = (await inject('GET', '/v1/assets?limit=3&sort=name', undefined, t)).json();
    expect(first.meta).toMatchObject({ total: 4, limit: 3 });
    const rest = (await inject('GET', `/v1/assets?limit=3&cursor=${first.meta.next_cursor}`, undefined, t)).json();
    expect([...first.data, ...rest.data].map((a: { name: string }) => a.name)).toEqual(['Unit 0', 'Unit 1', 'Unit 2', 'Unit 3']);
    expect(rest.meta.next_cursor).toBeNull();
    const wrongSort = await inject('GET', `/v1/assets?sort=-name&cursor=${first.meta.next_cursor}`, undefined, t);
    expect(wrongSort.statusCode).toBe(400);
  });
});

describe('history, restore and archive', () => {
  it('keeps every version and restores an earlier one as a new version', async () => {
    const device = await tracker();
    const asset = (await inject('POST', '/v1/assets', { name: 'Loader', make: 'JCB', model: '3CX', device_id: device })).json().data;
    await inject('PATCH', `/v1/assets/${asset.id}`, { name: 'Loader 2', state: 'under_repair' });
    await inject('PATCH', `/v1/assets/${asset.id}`, { model: '4CX', device_id: null });

    const history = await inject('GET', `/v1/assets/${asset.id}/history`);
    expect(history.statusCode).toBe(200);
    const versions = history.json().data;
    expect(versions.map((v: { version: number; action: string }) => [v.version, v.action])).toEqual([[3, 'updated'], [2, 'updated'], [1, 'created']]);
    const me = (await inject('GET', '/v1/me')).json().data.user.id;
    expect(versions[0]).toMatchObject({
      changed_by: me, api_key_id: null, restored_from: null, changed_at: expect.any(String),
      changes: { model: { from: '3CX', to: '4CX' }, device_id: { from: device, to: null } },
      data: { name: 'Loader 2', model: '4CX', device_id: null, state: 'under_repair', version: 3 },
    });
    expect(versions[2].data).not.toHaveProperty('last_position');

    const restored = await inject('POST', `/v1/assets/${asset.id}/history/1/restore`);
    expect(restored.statusCode).toBe(200);
    expect(restored.headers.etag).toBe('"4"');
    expect(restored.json().data).toMatchObject({ name: 'Loader', model: '3CX', state: 'operational', device_id: device, version: 4 });
    expect((await inject('GET', `/v1/devices/${device}`)).json().data.asset_id).toBe(asset.id);
    const [latest] = (await inject('GET', `/v1/assets/${asset.id}/history?limit=1`)).json().data;
    expect(latest).toMatchObject({ version: 4, action: 'restored', restored_from: 1, changes: { name: { from: 'Loader 2', to: 'Loader' } } });
    // Restoring what is already current writes nothing.
    expect((await inject('POST', `/v1/assets/${asset.id}/history/4/restore`)).json().data.version).toBe(4);

    expect((await inject('POST', `/v1/assets/${asset.id}/history/99/restore`)).statusCode).toBe(404);
    expect((await inject('POST', `/v1/assets/${asset.id}/history/0/restore`)).statusCode).toBe(404);
    expect((await inject('POST', `/v1/assets/${asset.id}/history/2/restore`, undefined, token, { 'if-match': '"3"' })).statusCode).toBe(409);
  });

  it('refuses a restore whose device now tracks another asset, or whose client is gone (409)', async () => {
    const device = await tracker();
    const client = (await inject('POST', '/v1/clients', { name: 'Short-lived' })).json().data;
    const asset = (await inject('POST', '/v1/assets', { name: 'Roller', device_id: device, client_id: client.id })).json().data;
    await inject('PATCH', `/v1/assets/${asset.id}`, { device_id: null, client_id: null });
    await inject('POST', '/v1/assets', { name: 'Thief', device_id: device });
    const busy = await inject('POST', `/v1/assets/${asset.id}/history/1/restore`);
    expect(busy.statusCode).toBe(409);
    expect(errorOf(busy).issues[0]!.path).toBe('device_id');
    expect((await inject('DELETE', `/v1/clients/${client.id}`)).statusCode).toBe(204);
    const gone = await inject('POST', `/v1/assets/${asset.id}/history/1/restore`);
    expect(gone.statusCode).toBe(409);
    expect(errorOf(gone).issues[0]!.path).toBe('client_id');
    expect((await inject('GET', `/v1/assets/${asset.id}`)).json().data.version).toBe(2);
  });

  it('archives and brings back; the history shows both', async () => {
    const asset = (await inject('POST', '/v1/assets', { name: 'Old crane' })).json().data;
    const archived = await inject('POST', `/v1/assets/${asset.id}/archive`);
    expect(archived.statusCode).toBe(200);
    expect(archived.json().data).toMatchObject({ status: 'archived', archived_at: expect.any(String), version: 2 });
    expect((await inject('POST', `/v1/assets/${asset.id}/archive`)).json().data.version).toBe(2);
    expect(names(await inject('GET', '/v1/assets?name=Old%20crane'))).toEqual([]);
    expect((await inject('GET', `/v1/assets/${asset.id}`)).json().data.status).toBe('archived');
    expect((await inject('POST', `/v1/assets/${asset.id}/unarchive`)).json().data).toMatchObject({ status: 'active', archived_at: null });
    // Restoring the archived version archives it again.
    expect((await inject('POST', `/v1/assets/${asset.id}/history/2/restore`)).json().data.status).toBe('archived');
    const actions = (await inject('GET', `/v1/assets/${asset.id}/history?sort=version`)).json().data.map((v: { action: string }) => v.action);
    expect(actions).toEqual(['created', 'archived', 'unarchived', 'restored']);
  });
});

describe('access', () => {
  it('another tenant\'s asset is 404 on every route; technicians may read but not write', async () => {
    const asset = (await inject('POST', '/v1/assets', { name: 'Mine' })).json().data;
    const other = await createOrg(db.owner);
    const t = await login(api, other);
    for (const [method, url, body] of [
      ['GET', `/v1/assets/${asset.id}`], ['PATCH', `/v1/assets/${asset.id}`, { name: 'x' }], ['POST', `/v1/assets/${asset.id}/archive`],
      ['GET', `/v1/assets/${asset.id}/history`], ['POST', `/v1/assets/${asset.id}/history/1/restore`],
    ] as [Method, string, object | undefined][]) {
      expect((await inject(method, url, body, t)).statusCode, `${method} ${url}`).toBe(404);
    }
    expect((await inject('GET', '/v1/assets/filter-options', undefined, t)).json().data).toEqual({ makes: [], models: [], clients: [], states: [] });

    const email = `tech-${randomUUID()}@example.com`;
    await inject('POST', '/v1/users', { email, password: 'a long password', role: 'technician' });
    const tech = await login(api, org, email, 'a long password');
    expect((await inject('GET', `/v1/assets/${asset.id}`, undefined, tech)).statusCode).toBe(200);
    for (const [method, url, body] of [
      ['POST', '/v1/assets', { name: 'x' }], ['PATCH', `/v1/assets/${asset.id}`, { name: 'x' }], ['POST', `/v1/assets/${asset.id}/archive`],
      ['POST', `/v1/assets/${asset.id}/history/1/restore`],
    ] as [Method, string, object | undefined][]) {
      const res = await inject(method, url, body, tech);
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(errorOf(res).message).toContain('assets.write');
    }
  });
});
