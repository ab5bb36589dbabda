import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_OFFSET } from '../../services/api/pagination.js';
import { MAX_TRACK_BUCKETS } from '../../services/api/repositories/gps-events.js';
import { MAX_FENCE_VERTICES_PER_TENANT, MAX_FENCES_PER_TENANT } from '../../services/shared/geofence/fence-geometry.js';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createOrg, type TestOrg } from '../support/factories.js';

/**
 * The documented caps (README, "Limits and timeouts"): list offsets, the span of an aggregate (bucketed
 * gps-events), geofences and their vertices per tenant. Past each, a 4xx in the error shape that says
 * what the limit is — never a query that holds a connection for as long as it likes.
 */

let db: TestDatabase;
let api: TestApi;

beforeAll(async () => {
  db = await createTestDatabase({ RATE_LIMIT_UNLIMITED_PER_MIN: '0' });
  api = await buildTestApi(db.config);
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

async function signedIn(): Promise<{ org: TestOrg; token: string }> {
  const org = await createOrg(db.owner, 'unlimited');
  return { org, token: await login(api, org) };
}

const get = (token: string, url: string) => api.sut.inject({ method: 'GET', url, headers: bearer(token) });
const square = (lon: number) => ({ type: 'Polygon', coordinates: [[[lon, 0], [lon + 0.01, 0], [lon + 0.01, 0.01], [lon, 0.01], [lon, 0]]] });

describe('list offsets', () => {
  it(`answer 400 naming offset past ${MAX_OFFSET}; cursors page deeper`, async () => {
    const { token } = await signedIn();
    expect((await get(token, `/v1/devices?offset=${MAX_OFFSET}`)).statusCode).toBe(200);
    for (const url of [`/v1/devices?offset=${MAX_OFFSET + 1}`, '/v1/work-orders?offset=1000000', '/v1/events?offset=99999999999']) {
      const res = await get(token, url);
      expect(res.statusCode, url).toBe(400);
      expect(errorOf(res).issues.map((i) => i.path)).toEqual(['offset']);
    }
  });
});

describe('bucketed gps-events', () => {
  it(`span at most ${MAX_TRACK_BUCKETS} buckets: 400 naming from past that`, async () => {
    const { token } = await signedIn();
    const to = '2026-06-01T00:00:00.000Z';
    const before = (days: number) => new Date(Date.parse(to) - days * 86_400_000).toISOString();
    const ok = [`bucket=1m&from=${before(7)}&to=${to}`, `bucket=5m&from=${before(35)}&to=${to}`, `bucket=1h&from=${before(420)}&to=${to}`,
      `bucket=1h&to=${to}`, 'bucket=1m'];
    for (const query of ok) expect((await get(token, `/v1/gps-events?${query}`)).statusCode, query).toBe(200);
    const tooLong = [`bucket=1m&from=${before(7.01)}&to=${to}`, `bucket=5m&from=${before(36)}&to=${to}`, `bucket=1h&from=${before(421)}&to=${to}`,
      'bucket=1h&from=0001-01-01T00:00:00Z', 'bucket=1m&from=1970-01-01T00:00:00Z'];
    for (const query of tooLong) {
      const res = await get(token, `/v1/gps-events?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(errorOf(res)).toMatchObject({ code: 'bad_request', issues: [{ path: 'from' }] });
    }
    // Fixes themselves (no bucket) are keyset-paged and need no cap.
    expect((await get(token, '/v1/gps-events?from=1970-01-01T00:00:00Z')).statusCode).toBe(200);
  });
});

describe('geofences per tenant', () => {
  const create = (token: string, geometry: object) =>
    api.sut.inject({ method: 'POST', url: '/v1/geofences', headers: bearer(token), payload: { name: 'Fence', kind: 'zone', geometry } });

  it(`stop at ${MAX_FENCES_PER_TENANT} with 409, and count again after a delete`, async () => {
    const { org, token } = await signedIn();
    await asTenant(db.owner, org.id, (c) => c.query(
      `insert into geofences (tenant_id, name, kind, geometry)
       select $1, 'bulk ' || n, 'zone', $2::jsonb from generate_series(1, $3::int) n`,
      [org.id, JSON.stringify(square(0)), MAX_FENCES_PER_TENANT - 1]));
    const last = await create(token, square(1));
    expect(last.statusCode, last.body).toBe(201);
    const refused = await create(token, square(2));
    expect(refused.statusCode).toBe(409);
    expect(errorOf(refused)).toMatchObject({ code: 'conflict', message: expect.stringContaining(String(MAX_FENCES_PER_TENANT)) });
    expect((await get(token, '/v1/geofences?limit=1')).json().meta.total).toBe(MAX_FENCES_PER_TENANT);
    expect((await api.sut.inject({ method: 'DELETE', url: `/v1/geofences/${last.json().data.id}`, headers: bearer(token) })).statusCode).toBe(204);
    expect((await create(token, square(3))).statusCode).toBe(201);
    // Creates racing for the last place: one gets it (counted under the organization's row lock).
    expect((await api.sut.inject({ method: 'DELETE', url: `/v1/geofences/${(await get(token, '/v1/geofences?limit=1&sort=-created_at')).json().data[0].id}`, headers: bearer(token) })).statusCode).toBe(204);
    const racing = await Promise.all([6, 7, 8, 9, 10].map((lon) => create(token, square(lon))));
    expect(racing.map((r) => r.statusCode).sort()).toEqual([201, 409, 409, 409, 409]);
    // Another tenant is not affected.
    const other = await signedIn();
    expect((await create(other.token, square(4))).statusCode).toBe(201);
  });

  it(`stop at ${MAX_FENCE_VERTICES_PER_TENANT} vertices with 409 naming geometry, on create and on a geometry change`, async () => {
    const { org, token } = await signedIn();
    const existing = (await create(token, square(5))).json().data.id as string;
    // 199 stored fences of 5,000 vertices each, plus the square: 995,005 vertices.
    await asTenant(db.owner, org.id, (c) => c.query(
      `insert into geofences (tenant_id, name, kind, geometry)
       select $1, 'big ' || n, 'zone', jsonb_build_object('type', 'Polygon', 'coordinates', jsonb_build_array(r.ring))
         from generate_series(1, 199) n,
              (select jsonb_agg(jsonb_build_array(i * 0.0001, 0)) as ring from generate_series(1, 5000) i) r`,
      [org.id]));
    const ring = (count: number) => [...Array.from({ length: count - 1 }, (_, i) => {
      const angle = (2 * Math.PI * i) / (count - 1);
      return [10 + Math.cos(angle) * 0.01, 10 + Math.sin(angle) * 0.01];
    }), [10.01, 10]];
    expect((await create(token, { type: 'Polygon', coordinates: [ring(4_000)] })).statusCode).toBe(201);
    const refused = await create(token, { type: 'Polygon', coordinates: [ring(1_200)] });
    expect(refused.statusCode).toBe(409);
    expect(errorOf(refused)).toMatchObject({ code: 'conflict', issues: [{ path: 'geometry' }] });
    const grown = await api.sut.inject({
      method: 'PATCH', url: `/v1/geofences/${existing}`, headers: bearer(token), payload: { geometry: { type: 'Polygon', coordinates: [ring(1_200)] } },
    });
    expect(grown.statusCode).toBe(409);
    const renamed = await api.sut.inject({ method: 'PATCH', url: `/v1/geofences/${existing}`, headers: bearer(token), payload: { name: 'Renamed' } });
    expect(renamed.statusCode).toBe(200);
  });
});
