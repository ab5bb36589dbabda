import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../services/shared/secrets.js';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createAsset, createOrg, type TestOrg } from '../support/factories.js';

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

const inject = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object, as = token) =>
  api.sut.inject({ method, url, headers: bearer(as), ...(payload ? { payload } : {}) });

async function createSite(tenantId: string): Promise<string> {
  return asTenant(db.owner, tenantId, async (c) => {
    const { rows } = await c.query<{ id: string }>(
      `insert into geofences (tenant_id, name, kind, geometry, radius_m) values ($1, 'Yard', 'site', '{"type":"Point","coordinates":[4.9,52.3]}', 100) returning id`,
      [tenantId],
    );
    return rows[0]!.id;
  });
}

/** The token stored for a device, read as the owner: only its SHA-256 is kept. */
async function storedTokenHash(tenantId: string, id: string): Promise<Buffer> {
  return asTenant(db.owner, tenantId, async (c) => (await c.query('select token_hash from devices where id = $1', [id])).rows[0].token_hash);
}

describe('/v1/devices', () => {
  it('creates a device and shows its token once, stored as SHA-256', async () => {
    const assetId = await createAsset(db.owner, org.id, 'Crane');
    const siteId = await createSite(org.id);
    const res = await inject('POST', '/v1/devices', { name: 'Crane tracker', kind: 'tracker', asset_id: assetId, site_id: siteId });
    expect(res.statusCode).toBe(201);
    const device = res.json().data;
    expect(device).toMatchObject({
      name: 'Crane tracker', kind: 'tracker', asset_id: assetId, site_id: siteId, status: 'active', last_seen_at: null, last_position: null,
    });
    expect(device.token.length).toBeGreaterThanOrEqual(43);
    expect((await storedTokenHash(org.id, device.id)).equals(sha256(device.token))).toBe(true);

    const read = await inject('GET', `/v1/devices/${device.id}`);
    expect(read.statusCode).toBe(200);
    expect(read.json().data).not.toHaveProperty('token');
    expect(read.body).not.toContain(device.token);
    const list = await inject('GET', '/v1/devices');
    expect(list.body).not.toContain(device.token);
  });

  it('shows the refusals ingest counted for the device, by reason', async () => {
    const device = (await inject('POST', '/v1/devices', { name: 'Van tracker', kind: 'tracker' })).json().data;
    expect(device.rejected).toEqual({});
    await asTenant(db.owner, org.id, (c) => c.query(
      `insert into device_rejections (device_id, tenant_id, reason, count, last_at)
       values ($1, $2, 'ts_in_future', 3, now()), ($1, $2, 'invalid_lat', 1, now())`, [device.id, org.id]));
    expect((await inject('GET', `/v1/devices/${device.id}`)).json().data.rejected).toEqual({ ts_in_future: 3, invalid_lat: 1 });
    const listed = (await inject('GET', '/v1/devices?limit=100')).json().data.find((d: { id: string }) => d.id === device.id);
    expect(listed.rejected).toEqual({ ts_in_future: 3, invalid_lat: 1 });
  });

  it('lists with filters, last contact and last position', async () => {
    const assetId = await createAsset(db.owner, org.id, 'Loader');
    const tracker = (await inject('POST', '/v1/devices', { name: 'Loader tracker', kind: 'tracker', asset_id: assetId })).json().data;
    const clock = (await inject('POST', '/v1/devices', { name: 'Gate clock', kind: 'attendance' })).json().data;
    await asTenant(db.owner, org.id, (c) => c.query(
      `insert into device_state (device_id, tenant_id, last_seen_at, last_fix_ts, lat, lon, speed_mps, heading_deg, accuracy_m, battery_pct)
       values ($1, $2, now(), now() - interval '1 second', 52.37, 4.89, 3.5, 90, 5, 80)`,
      [tracker.id, org.id],
    ));

    const trackers = (await inject('GET', `/v1/devices?kind=tracker&asset_id=${assetId}`)).json();
    expect(trackers.meta.total).toBe(1);
    expect(trackers.data[0]).toMatchObject({ id: tracker.id, last_position: { lat: 52.37, lon: 4.89, speed_mps: 3.5, heading_deg: 90, accuracy_m: 5, battery_pct: 80 } });
    expect(trackers.data[0].last_seen_at).toEqual(expect.any(String));

    const attendance = (await inject('GET', '/v1/devices?kind=attendance')).json();
    expect(attendance.data.map((d: { id: string }) => d.id)).toEqual([clock.id]);

    const recent = (await inject('GET', '/v1/devices?sort=-last_seen_at&limit=1')).json();
    expect(recent.data[0].id).toBe(tracker.id);

    const bad = await inject('GET', '/v1/devices?kind=drone&status=lost');
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).issues.map((i) => i.path).sort()).toEqual(['kind', 'status']);
  });

  it('renames, relinks, rotates the token, disables, enables and deletes', async () => {
    const created = (await inject('POST', '/v1/devices', { name: 'Van 1', kind: 'tracker' })).json().data;
    const assetId = await createAsset(db.owner, org.id, 'Van');

    const patched = await inject('PATCH', `/v1/devices/${created.id}`, { name: 'Van one', asset_id: assetId });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().data).toMatchObject({ name: 'Van one', asset_id: assetId });
    expect((await inject('PATCH', `/v1/devices/${created.id}`, { asset_id: null })).json().data.asset_id).toBeNull();

    // Action POSTs accept an empty JSON body, as many clients send one.
    const rotated = await api.sut.inject({
      method: 'POST', url: `/v1/devices/${created.id}/rotate-token`, headers: { ...bearer(token), 'content-type': 'application/json' },
    });
    expect(rotated.statusCode).toBe(200);
    const newToken = rotated.json().data.token;
    expect(newToken).not.toBe(created.token);
    expect(rotated.json().data.token_rotated_at).toEqual(expect.any(String));
    expect((await storedTokenHash(org.id, created.id)).equals(sha256(newToken))).toBe(true);

    const disabled = await inject('POST', `/v1/devices/${created.id}/disable`);
    expect(disabled.json().data).toMatchObject({ status: 'disabled', disabled_at: expect.any(String) });
    expect((await inject('GET', '/v1/devices?status=disabled')).json().data.map((d: { id: string }) => d.id)).toContain(created.id);
    const enabled = await inject('POST', `/v1/devices/${created.id}/enable`);
    expect(enabled.json().data).toMatchObject({ status: 'active', disabled_at: null });

    expect((await inject('DELETE', `/v1/devices/${created.id}`)).statusCode).toBe(204);
    expect((await inject('GET', `/v1/devices/${created.id}`)).statusCode).toBe(404);
  });

  it('answers 400 for an asset or site that does not exist or is another tenant\'s, and 409 for an asset already tracked', async () => {
    const other = await createOrg(db.owner);
    const theirAsset = await createAsset(db.owner, other.id, 'Theirs');
    const theirSite = await createSite(other.id);

    for (const [field, value] of [['asset_id', theirAsset], ['asset_id', crypto.randomUUID()], ['site_id', theirSite]] as const) {
      const res = await inject('POST', '/v1/devices', { name: 'x', kind: 'tracker', [field]: value });
      expect(res.statusCode).toBe(400);
      expect(errorOf(res)).toMatchObject({ code: 'bad_request', issues: [{ path: field }] });
    }

    const mine = (await inject('POST', '/v1/devices', { name: 'y', kind: 'tracker' })).json().data;
    const patch = await inject('PATCH', `/v1/devices/${mine.id}`, { asset_id: theirAsset });
    expect(patch.statusCode).toBe(400);

    const assetId = await createAsset(db.owner, org.id, 'Dozer');
    expect((await inject('POST', '/v1/devices', { name: 'first', kind: 'tracker', asset_id: assetId })).statusCode).toBe(201);
    const second = await inject('POST', '/v1/devices', { name: 'second', kind: 'tracker', asset_id: assetId });
    expect(second.statusCode).toBe(409);
    expect(errorOf(second)).toMatchObject({ code: 'conflict', issues: [{ path: 'asset_id' }] });
  });

  it('validates the body: 400 with issues', async () => {
    const res = await inject('POST', '/v1/devices', { kind: 'phone', asset_id: 'nope' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).issues.map((i) => i.path).sort()).toEqual(['asset_id', 'kind', 'name']);

    // Bodies are taken as sent: no coercion of types, no silently dropped fields.
    const typed = await inject('POST', '/v1/devices', { name: 123, kind: 'tracker', colour: 'red' });
    expect(typed.statusCode).toBe(400);
    expect(errorOf(typed).issues).toEqual(expect.arrayContaining([
      { path: 'name', message: 'must be string' },
      { path: 'colour', message: 'is not a known field' },
    ]));
    expect(errorOf(typed).issues).toHaveLength(2);
  });

  it('needs devices.write to change devices: a viewer gets 403 but may read', async () => {
    await inject('POST', '/v1/users', { email: 'looker@example.com', password: 'just looking', role: 'viewer' });
    const viewer = await login(api, org, 'looker@example.com', 'just looking');
    expect((await inject('GET', '/v1/devices', undefined, viewer)).statusCode).toBe(200);
    const res = await inject('POST', '/v1/devices', { name: 'z', kind: 'tracker' }, viewer);
    expect(res.statusCode).toBe(403);
    expect(errorOf(res).code).toBe('forbidden');
  });
});

describe('tenant isolation of devices', () => {
  it('answers 404 for another tenant\'s device on every route, and never lists it', async () => {
    const other = await createOrg(db.owner, 'unlimited');
    const otherToken = await login(api, other);
    const theirs = (await inject('POST', '/v1/devices', { name: 'theirs', kind: 'tracker' }, otherToken)).json().data;

    const attempts = [
      inject('GET', `/v1/devices/${theirs.id}`),
      inject('PATCH', `/v1/devices/${theirs.id}`, { name: 'mine now' }),
      inject('POST', `/v1/devices/${theirs.id}/rotate-token`),
      inject('POST', `/v1/devices/${theirs.id}/disable`),
      inject('POST', `/v1/devices/${theirs.id}/enable`),
      inject('DELETE', `/v1/devices/${theirs.id}`),
    ];
    for (const res of await Promise.all(attempts)) {
      expect(res.statusCode).toBe(404);
      expect(errorOf(res).code).toBe('not_found');
    }
    const list = (await inject('GET', '/v1/devices?limit=100')).json();
    expect(list.data.map((d: { id: string }) => d.id)).not.toContain(theirs.id);

    const intact = (await inject('GET', `/v1/devices/${theirs.id}`, undefined, otherToken)).json().data;
    expect(intact).toMatchObject({ name: 'theirs', status: 'active' });
    expect((await storedTokenHash(other.id, theirs.id)).equals(sha256(theirs.token))).toBe(true);
  });
});
