import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createAsset, createDevice, createEmployee, createOrg, type TestOrg } from '../support/factories.js';
import { GeofenceHarness, square } from './harness.js';
import { waitFor } from '../support/wait.js';

let db: TestDatabase;
let api: TestApi;
let h: GeofenceHarness;
let org: TestOrg;
let other: TestOrg;
let token: string;
let otherToken: string;

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config);
  h = new GeofenceHarness(db);
  [org, other] = await Promise.all([createOrg(db.owner), createOrg(db.owner)]);
  [token, otherToken] = await Promise.all([login(api, org), login(api, other)]);
});

afterAll(async () => {
  await h?.close();
  await api?.close();
  await db?.drop();
});

const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object, as = token) =>
  api.sut.inject({ method, url, headers: bearer(as), ...(payload ? { payload } : {}) });

const LON = 4.35;
const LAT = 50.85;
const polygon = (lon = LON, lat = LAT, half = 0.001) => ({ type: 'Polygon', coordinates: [square(lon, lat, half)] });

describe('geofences', () => {
  it('creates, reads, lists, changes and deletes every shape', async () => {
    const shapes = [
      { name: 'Depot', kind: 'site', geometry: polygon() },
      { name: 'Two yards', kind: 'zone', geometry: { type: 'MultiPolygon', coordinates: [[square(LON, LAT, 0.001)], [square(LON + 0.01, LAT, 0.001)]] } },
      { name: 'Pit', kind: 'restricted', geometry: { type: 'Point', coordinates: [LON, LAT] }, radius_m: 120, confirm_fixes: 2 },
      { name: 'Haul road', kind: 'zone', geometry: { type: 'LineString', coordinates: [[LON, LAT], [LON + 0.02, LAT]] }, width_m: 30,
        schedule: { timezone: 'Europe/Brussels', windows: [{ days: [1, 2, 3, 4, 5], start: '06:00', end: '18:00' }] } },
    ];
    const ids: string[] = [];
    for (const body of shapes) {
      const res = await call('POST', '/v1/geofences', body);
      expect(res.statusCode, res.body).toBe(201);
      const { data } = res.json();
      expect(data).toMatchObject({ ...body, confirm_fixes: body.confirm_fixes ?? 3 });
      ids.push(data.id);
    }
    const one = await call('GET', `/v1/geofences/${ids[2]}`);
    expect(one.json().data).toMatchObject({ id: ids[2], radius_m: 120, width_m: null, schedule: null, asset_filter: null });

    const list = await call('GET', '/v1/geofences?kind=zone&sort=name');
    expect(list.json().data.map((g: { name: string }) => g.name)).toEqual(['Haul road', 'Two yards']);
    expect(list.json().meta).toMatchObject({ total: 2, limit: 50, offset: 0 });

    const asset = await createAsset(db.owner, org.id);
    const patched = await call('PATCH', `/v1/geofences/${ids[0]}`, { name: 'Main depot', asset_filter: { asset_ids: [asset] }, geometry: polygon(LON, LAT, 0.002) });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json().data).toMatchObject({ name: 'Main depot', kind: 'site', asset_filter: { asset_ids: [asset] }, geometry: polygon(LON, LAT, 0.002) });
    // A circle turned into a polygon drops its radius.
    const reshaped = await call('PATCH', `/v1/geofences/${ids[2]}`, { geometry: polygon() });
    expect(reshaped.json().data).toMatchObject({ radius_m: null, geometry: polygon() });

    expect((await call('DELETE', `/v1/geofences/${ids[1]}`)).statusCode).toBe(204);
    expect((await call('GET', `/v1/geofences/${ids[1]}`)).statusCode).toBe(404);
    expect((await call('DELETE', `/v1/geofences/${ids[1]}`)).statusCode).toBe(404);
  });

  it('takes radius_m and width_m inside the geometry as well as beside it', async () => {
    const circle = await call('POST', '/v1/geofences', { name: 'Inner circle', kind: 'zone', geometry: { type: 'Point', coordinates: [LON, LAT], radius_m: 75 } });
    expect(circle.statusCode, circle.body).toBe(201);
    expect(circle.json().data).toMatchObject({ radius_m: 75, geometry: { type: 'Point', coordinates: [LON, LAT] } });
    expect(circle.json().data.geometry).not.toHaveProperty('radius_m');
    const corridor = await call('POST', '/v1/geofences', { name: 'Inner road', kind: 'zone', geometry: { type: 'LineString', coordinates: [[LON, LAT], [LON + 0.01, LAT]], width_m: 12 } });
    expect(corridor.statusCode, corridor.body).toBe(201);
    expect(corridor.json().data).toMatchObject({ width_m: 12, geometry: { type: 'LineString' } });
    const widened = await call('PATCH', `/v1/geofences/${corridor.json().data.id}`, { geometry: { type: 'LineString', coordinates: [[LON, LAT], [LON + 0.01, LAT]], width_m: 20 } });
    expect(widened.json().data).toMatchObject({ width_m: 20 });
  });

  it('answers 400 bad_request with issues for invalid geometry', async () => {
    const cases: [object, string, RegExp][] = [
      [{ geometry: { type: 'Polygon', coordinates: [[[0, 0], [2, 2], [2, 0], [0, 1], [0, 0]]] } }, 'geometry.coordinates', /intersect/],
      [{ geometry: { type: 'Polygon', coordinates: [square(LON, LAT, 0.001).slice(0, 4)] } }, 'geometry.coordinates.0', /not closed/],
      [{ geometry: { type: 'Polygon', coordinates: [[[0, 0], [0, 91], [1, 1], [0, 0]]] } }, 'geometry.coordinates.0.1', /latitude 91/],
      [{ geometry: { type: 'Point', coordinates: [LON, LAT] } }, 'radius_m', /radius_m/],
      [{ geometry: { type: 'LineString', coordinates: [[LON, LAT], [LON + 1, LAT]] } }, 'width_m', /width_m/],
      [{ geometry: { type: 'Polygon', coordinates: [Array.from({ length: 6000 }, (_, i) => [Math.cos(i), Math.sin(i)])] } }, 'geometry.coordinates', /vertices/],
      [{ geometry: { type: 'Circle', coordinates: [LON, LAT] } }, 'geometry.type', /must be one of/],
      [{ geometry: polygon(), schedule: { timezone: 'Atlantis/Capital', windows: [{ days: [1], start: '08:00', end: '17:00' }] } }, 'schedule.timezone', /time zone/],
      [{ geometry: polygon(), asset_filter: { asset_ids: ['00000000-0000-4000-8000-000000000000'] } }, 'asset_filter.asset_ids.0', /no asset/],
    ];
    for (const [body, path, message] of cases) {
      const res = await call('POST', '/v1/geofences', { name: 'Bad', kind: 'zone', ...body });
      expect(res.statusCode, JSON.stringify(body).slice(0, 120)).toBe(400);
      const error = errorOf(res);
      expect(error.code).toBe('bad_request');
      expect(error.issues).toContainEqual({ path, message: expect.stringMatching(message) });
    }
    const created = await call('POST', '/v1/geofences', { name: 'Ok', kind: 'zone', geometry: polygon() });
    const patch = await call('PATCH', `/v1/geofences/${created.json().data.id}`, { geometry: { type: 'Point', coordinates: [LON, LAT] } });
    expect(patch.statusCode).toBe(400);
    expect(errorOf(patch).issues).toContainEqual({ path: 'radius_m', message: expect.any(String) });
  });

  it('keeps tenants apart: another tenant\'s fence is not found, lists show one\'s own', async () => {
    const mine = (await call('POST', '/v1/geofences', { name: 'Mine', kind: 'zone', geometry: polygon() })).json().data.id;
    const theirs = (await call('POST', '/v1/geofences', { name: 'Theirs', kind: 'zone', geometry: polygon() }, otherToken)).json().data.id;
    for (const [method, payload] of [['GET', undefined], ['PATCH', { name: 'x' }], ['DELETE', undefined]] as const) {
      const res = await call(method, `/v1/geofences/${theirs}`, payload);
      expect(res.statusCode).toBe(404);
      expect(errorOf(res).code).toBe('not_found');
    }
    const ids = (await call('GET', '/v1/geofences?limit=100')).json().data.map((g: { id: string }) => g.id);
    expect(ids).toContain(mine);
    expect(ids).not.toContain(theirs);
    expect((await call('GET', '/v1/geofences', undefined, otherToken)).json().data.map((g: { id: string }) => g.id)).toEqual([theirs]);
  });

  it('needs the geofences scopes', async () => {
    const key = (await call('POST', '/v1/api-keys', { name: 'readonly', scopes: ['geofences.read'] })).json().data.key;
    expect((await call('GET', '/v1/geofences', undefined, key)).statusCode).toBe(200);
    const res = await call('POST', '/v1/geofences', { name: 'x', kind: 'zone', geometry: polygon() }, key);
    expect(res.statusCode).toBe(403);
    expect(errorOf(res).code).toBe('forbidden');
  });

  it('a fence made through the API fires in the running evaluator, and its events are in /v1/events', async () => {
    const worker = await h.startWorker();
    const lon = LON + 1;
    const fence = (await call('POST', '/v1/geofences', { name: 'Gate', kind: 'restricted', geometry: polygon(lon) })).json().data;
    const asset = await createAsset(db.owner, org.id);
    const device = await createDevice(db.owner, org.id, { assetId: asset });
    await waitFor(() => !worker.fences.isLoaded(org.id) || worker.fences.get(org.id).byId.has(fence.id));
    const t0 = Date.parse('2025-05-05T09:00:00Z');
    await h.publishFixes([1, 2, 3].map((s) => h.fix({ tenantId: org.id, deviceId: device.id, assetId: asset, lon, lat: LAT, tsMs: t0 + s * 1000 })));
    await h.drained();
    const res = await call('GET', `/v1/events?geofence_id=${fence.id}&sort=occurred_at`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().data.map((e: { event: string }) => e.event)).toEqual(['asset.geofence_entered', 'asset.geofence_breach']);
    expect(res.json().data[0]).toMatchObject({
      tenant_id: org.id, occurred_at: new Date(t0 + 3000).toISOString(),
      data: { asset_id: asset, device_id: device.id, geofence_id: fence.id, geofence_name: 'Gate', lat: LAT, lon, ts: new Date(t0 + 3000).toISOString() },
    });
    expect((await call('GET', `/v1/events?geofence_id=${fence.id}`, undefined, otherToken)).json().data).toEqual([]);
  });
});

describe('GET /v1/gps-events', () => {
  let asset: string;
  let deviceId: string;
  const t0 = Date.parse('2025-05-06T08:00:00Z');

  beforeAll(async () => {
    asset = await createAsset(db.owner, org.id);
    deviceId = (await createDevice(db.owner, org.id, { assetId: asset })).id;
    const otherDevice = (await createDevice(db.owner, other.id)).id;
    // 10 minutes of fixes, one every 30 s, driving east along the latitude through a 0.002°-wide square.
    const rows: unknown[][] = Array.from({ length: 20 }, (_, i) => [org.id, deviceId, asset, new Date(t0 + i * 30_000), LAT, LON - 0.005 + i * 0.0005]);
    rows.push([other.id, otherDevice, null, new Date(t0), LAT, LON]);
    for (const r of rows) {
      await db.owner.query('insert into positions (tenant_id, device_id, asset_id, ts, lat, lon, speed_mps) values ($1, $2, $3, $4, $5, $6, 10)', r);
    }
  });

  it('pages newest first with a cursor, or oldest first', async () => {
    const seen: string[] = [];
    let url = `/v1/gps-events?asset_id=${asset}&limit=8`;
    for (;;) {
      const res = await call('GET', url);
      expect(res.statusCode, res.body).toBe(200);
      const { data, meta } = res.json();
      seen.push(...data.map((f: { ts: string }) => f.ts));
      expect(meta.total).toBeNull();
      if (!meta.next_cursor) break;
      url = `/v1/gps-events?asset_id=${asset}&limit=8&cursor=${meta.next_cursor}`;
    }
    expect(seen).toHaveLength(20);
    expect(seen[0]).toBe(new Date(t0 + 19 * 30_000).toISOString());
    expect([...seen].sort().reverse()).toEqual(seen);
    const oldest = (await call('GET', `/v1/gps-events?device_id=${deviceId}&sort=ts&limit=1`)).json().data[0];
    expect(oldest).toMatchObject({ ts: new Date(t0).toISOString(), asset_id: asset, device_id: deviceId, lat: LAT, speed_mps: 10 });
  });

  it('gives the total of an uncounted list when its last page is reached by offset', async () => {
    const whole = (await call('GET', `/v1/gps-events?device_id=${deviceId}&limit=100`)).json().meta;
    expect(whole).toEqual({ total: 20, limit: 100, offset: 0, next_cursor: null });
    expect((await call('GET', `/v1/gps-events?device_id=${deviceId}&limit=15&offset=15`)).json().meta.total).toBe(20);
    expect((await call('GET', `/v1/gps-events?device_id=${deviceId}&limit=15`)).json().meta.total).toBeNull();
    expect((await call('GET', `/v1/gps-events?device_id=${deviceId}&offset=50`)).json().meta.total).toBeNull();
  });

  it('filters by time range and by geofence zone (polygon and circle)', async () => {
    const range = await call('GET', `/v1/gps-events?device_id=${deviceId}&from=${new Date(t0 + 60_000).toISOString()}&to=${new Date(t0 + 120_000).toISOString()}`);
    expect(range.json().data.map((f: { ts: string }) => f.ts)).toEqual([new Date(t0 + 90_000).toISOString(), new Date(t0 + 60_000).toISOString()]);

    const zone = (await call('POST', '/v1/geofences', { name: 'Zone', kind: 'zone', geometry: polygon(LON, LAT, 0.001) })).json().data.id;
    const inZone = (await call('GET', `/v1/gps-events?geofence_id=${zone}&sort=ts`)).json().data.map((f: { lon: number }) => f.lon);
    // Fixes at LON - 0.001 … LON + 0.001 (0.0005° apart): five of them.
    expect(inZone).toHaveLength(5);
    for (const lon of inZone) expect(Math.abs(lon - LON)).toBeLessThanOrEqual(0.001 + 1e-9);

    const circle = (await call('POST', '/v1/geofences', { name: 'Ring', kind: 'zone', geometry: { type: 'Point', coordinates: [LON, LAT] }, radius_m: 40 })).json().data.id;
    // 0.0005° of longitude at 50.85° N ≈ 35 m: the centre fix and its two neighbours.
    expect((await call('GET', `/v1/gps-events?geofence_id=${circle}`)).json().data).toHaveLength(3);
    const theirs = (await call('POST', '/v1/geofences', { name: 'Theirs', kind: 'zone', geometry: polygon() }, otherToken)).json().data.id;
    const res = await call('GET', `/v1/gps-events?geofence_id=${theirs}`);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).issues).toEqual([{ path: 'geofence_id', message: expect.any(String) }]);
  });

  // A bucketed track spans a bounded range (10,080 buckets: 35 days of 5m), so `to` is named here.
  it('returns a time-bucketed track', async () => {
    const res = await call('GET', `/v1/gps-events?device_id=${deviceId}&bucket=5m&sort=ts&from=${new Date(t0).toISOString()}&to=${new Date(t0 + 3600_000).toISOString()}`);
    expect(res.statusCode, res.body).toBe(200);
    const buckets = res.json().data;
    expect(buckets.map((b: { bucket: string; fixes: number }) => [b.bucket, b.fixes])).toEqual([
      [new Date(t0).toISOString(), 10],
      [new Date(t0 + 300_000).toISOString(), 10],
    ]);
    expect(buckets[0]).toMatchObject({ device_id: deviceId, asset_id: asset, last_ts: new Date(t0 + 270_000).toISOString(), lon: expect.closeTo(LON - 0.005 + 9 * 0.0005, 9), avg_speed_mps: 10 });
  });

  it('shows one tenant\'s fixes only', async () => {
    const theirs = (await call('GET', '/v1/gps-events', undefined, otherToken)).json().data;
    expect(theirs).toHaveLength(1);
    expect((await call('GET', `/v1/gps-events?device_id=${deviceId}`, undefined, otherToken)).json().data).toEqual([]);
  });
});

describe('timesheets', () => {
  let employee: string;
  let device: string;
  const day = '2025-05-07';

  beforeAll(async () => {
    employee = await createEmployee(db.owner, org.id, { name: 'Hedy', badge_code: 'H-1' });
    device = (await createDevice(db.owner, org.id, { kind: 'attendance' })).id;
    const punches: [string, 'in' | 'out', boolean, string | null][] = [
      [`${day}T07:00:00Z`, 'in', true, employee],
      [`${day}T11:30:00Z`, 'out', true, employee],
      [`${day}T12:00:00Z`, 'in', false, employee],
      [`${day}T16:00:00Z`, 'out', true, employee],
      ['2025-05-08T07:00:00Z', 'in', true, employee],
      [`${day}T08:00:00Z`, 'in', true, null], // an unknown badge
    ];
    for (const [ts, kind, verified, employeeId] of punches) {
      await db.owner.query(
        `insert into punches (tenant_id, device_id, ts, employee_ref, kind, lat, lon, employee_id, gps_verified, distance_m, verified_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, now())`,
        [org.id, device, ts, employeeId ? 'H-1' : 'X-404', kind, LAT, LON, employeeId, verified],
      );
    }
  });

  it('generates one timesheet per employee and day, with periods, hours and verification', async () => {
    const res = await call('GET', `/v1/timesheets?employee_id=${employee}`);
    expect(res.statusCode, res.body).toBe(200);
    const [next, first] = res.json().data;
    expect(res.json().meta.total).toBe(2);
    expect(first).toMatchObject({
      id: `${employee}_${day}`, employee_id: employee, employee_name: 'Hedy', date: day, status: 'pending',
      hours: 8.5, verified: false, complete: true,
    });
    expect(first.periods).toEqual([
      { in: `${day}T07:00:00.000Z`, out: `${day}T11:30:00.000Z`, hours: 4.5, verified: true },
      { in: `${day}T12:00:00.000Z`, out: `${day}T16:00:00.000Z`, hours: 4, verified: false },
    ]);
    expect(first.punches).toHaveLength(4);
    expect(next).toMatchObject({ date: '2025-05-08', hours: 0, complete: false, verified: true });
  });

  it('approves and rejects; the status filter follows', async () => {
    const id = `${employee}_${day}`;
    const approved = await call('POST', `/v1/timesheets/${id}/approve`, { note: 'ok' });
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json().data).toMatchObject({ id, status: 'approved', note: 'ok', decided_by: expect.any(String) });
    expect((await call('GET', '/v1/timesheets?status=approved')).json().data.map((t: { id: string }) => t.id)).toEqual([id]);
    expect((await call('GET', '/v1/timesheets?status=pending')).json().data.map((t: { id: string }) => t.id)).toEqual([`${employee}_2025-05-08`]);
    const rejected = await call('POST', `/v1/timesheets/${id}/reject`);
    expect(rejected.json().data).toMatchObject({ status: 'rejected', note: null });
    expect((await call('GET', `/v1/timesheets/${id}`)).json().data.status).toBe('rejected');
  });

  it('answers 404 for a day without punches and for another tenant\'s timesheet', async () => {
    expect((await call('POST', `/v1/timesheets/${employee}_2025-01-01/approve`)).statusCode).toBe(404);
    expect((await call('POST', `/v1/timesheets/${employee}_${day}/approve`, undefined, otherToken)).statusCode).toBe(404);
    expect((await call('GET', `/v1/timesheets/${employee}_${day}`, undefined, otherToken)).statusCode).toBe(404);
    expect((await call('GET', '/v1/timesheets/not-an-id')).statusCode).toBe(404);
    expect((await call('GET', '/v1/timesheets', undefined, otherToken)).json().data).toEqual([]);
  });

  it('lists punch records, unknown employees included', async () => {
    const unknown = (await call('GET', '/v1/timesheets/punches?unknown_employee=true')).json().data;
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toMatchObject({ employee_id: null, employee_ref: 'X-404', kind: 'in' });
    expect((await call('GET', `/v1/timesheets/punches?employee_id=${employee}&gps_verified=false`)).json().data).toHaveLength(1);
  });
});

describe('GET /v1/events', () => {
  it('filters the log by type, asset, employee and time, in the event envelope, own tenant only', async () => {
    const asset = await createAsset(db.owner, org.id);
    const employee = await createEmployee(db.owner, org.id);
    const rows = [
      ['asset.geofence_entered', '2025-05-09T10:00:00Z', asset, null],
      ['asset.geofence_exited', '2025-05-09T11:00:00Z', asset, null],
      ['employee.punched_in', '2025-05-09T12:00:00Z', null, employee],
    ] as const;
    await asTenant(db.owner, org.id, async (c) => {
      for (const [type, at, assetId, employeeId] of rows) {
        await c.query(
          `insert into events (tenant_id, type, occurred_at, data, idempotency_key, asset_id, employee_id) values ($1, $2, $3, $4, $5, $6, $7)`,
          [org.id, type, at, JSON.stringify({ asset_id: assetId, employee_id: employeeId }), `t:${type}:${at}`, assetId, employeeId],
        );
      }
    });
    const byAsset = (await call('GET', `/v1/events?asset_id=${asset}`)).json();
    expect(byAsset.data.map((e: { event: string }) => e.event)).toEqual(['asset.geofence_exited', 'asset.geofence_entered']);
    expect(byAsset.data[0]).toEqual({
      id: expect.any(String), event: 'asset.geofence_exited', tenant_id: org.id, occurred_at: '2025-05-09T11:00:00.000Z',
      data: { asset_id: asset, employee_id: null }, recorded_at: expect.any(String), stream_id: null,
    });
    expect((await call('GET', `/v1/events?employee_id=${employee}`)).json().data.map((e: { event: string }) => e.event)).toEqual(['employee.punched_in']);
    expect((await call('GET', '/v1/events?type=asset.geofence_entered,employee.punched_in&from=2025-05-09T10:30:00Z&to=2025-05-09T23:00:00Z')).json().data
      .map((e: { event: string }) => e.event)).toEqual(['employee.punched_in']);
    const page = (await call('GET', `/v1/events?asset_id=${asset}&limit=1`)).json();
    const second = (await call('GET', `/v1/events?asset_id=${asset}&limit=1&cursor=${page.meta.next_cursor}`)).json();
    expect(second.data[0].event).toBe('asset.geofence_entered');
    expect((await call('GET', `/v1/events?asset_id=${asset}`, undefined, otherToken)).json().data).toEqual([]);
  });
});
