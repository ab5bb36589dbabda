import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRole } from '../../services/api/role.js';
import { Runtime } from '../../services/shared/runtime.js';
import { createLogger } from '../../services/shared/log.js';
import { bearer, buildTestApi, errorOf, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createOrg, type TestOrg } from '../support/factories.js';

const STARTER_LIMIT = 5;
const TEAM_LIMIT = 8;

let db: TestDatabase;
let api: TestApi;
let logLines: string[];

beforeAll(async () => {
  db = await createTestDatabase({ RATE_LIMIT_STARTER_PER_MIN: String(STARTER_LIMIT), RATE_LIMIT_TEAM_PER_MIN: String(TEAM_LIMIT) });
  logLines = [];
  const sink = new Writable({ write(chunk, _encoding, done) { logLines.push(String(chunk)); done(); } });
  api = await buildTestApi(db.config, { log: pino({ level: 'error' }, sink) });
  // A route that fails the way a bug would, to see what a client and the log get.
  api.sut.get('/boom', { config: { rateLimit: false } }, async () => {
    throw new Error('connection to 10.0.0.7 failed for user "secret_user"');
  });
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

/** A session token signed the way POST /v1/auth/token signs it (login is exercised in auth.test.ts). */
async function sessionFor(org: TestOrg): Promise<string> {
  const id = await asTenant(db.owner, org.id, async (c) =>
    (await c.query<{ id: string }>('select id from users where lower(email) = lower($1)', [org.adminEmail])).rows[0]!.id);
  return api.tokens.sign({ sub: id, tid: org.id, role: 'admin', scopes: ['devices.read', 'devices.write', 'users.read'] }, 600).token;
}

describe('documentation', () => {
  it('serves OpenAPI 3 listing the routes, with a bearer security scheme', async () => {
    const res = await api.sut.inject({ method: 'GET', url: '/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const path of ['/v1/auth/token', '/v1/me', '/v1/users', '/v1/users/{id}', '/v1/api-keys', '/v1/api-keys/{id}',
      '/v1/devices', '/v1/devices/{id}', '/v1/devices/{id}/rotate-token', '/v1/devices/{id}/disable', '/v1/devices/{id}/enable']) {
      expect(doc.paths, path).toHaveProperty([path]);
    }
    expect(Object.keys(doc.paths['/v1/devices'])).toEqual(expect.arrayContaining(['get', 'post']));
    expect(doc.paths['/v1/auth/token'].post.security).toEqual([]);
    expect(doc.paths['/v1/devices'].post.requestBody.content['application/json'].schema.required).toEqual(['name', 'kind']);
    expect(doc.paths['/v1/devices'].get.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['limit', 'offset', 'cursor', 'sort', 'kind']));
    expect(doc.paths).not.toHaveProperty(['/metrics']);
  });

  it('serves Swagger UI at /v1/docs', async () => {
    const res = await api.sut.inject({ method: 'GET', url: '/v1/docs' });
    const page = res.statusCode === 302 ? await api.sut.inject({ method: 'GET', url: String(res.headers.location) }) : res;
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('swagger-ui');
  });
});

describe('operations', () => {
  it('answers /healthz and /readyz with the database and Redis reachable', async () => {
    expect((await api.sut.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await api.sut.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', redis: 'ok' } });
  });

  it('exposes Prometheus metrics with the request-duration histogram by route, method and status', async () => {
    await api.sut.inject({ method: 'GET', url: '/healthz' });
    const res = await api.sut.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toContain('# TYPE http_request_duration_seconds histogram');
    expect(res.body).toMatch(/http_request_duration_seconds_bucket\{[^}]*route="\/healthz"[^}]*method="GET"[^}]*status="200"/);
    expect(res.body).toContain('process_cpu_user_seconds_total');
  });

  it('answers an unknown route with the error shape and a request id header', async () => {
    const res = await api.sut.inject({ method: 'GET', url: '/v1/nothing-here' });
    expect(res.statusCode).toBe(404);
    const error = errorOf(res);
    expect(error).toMatchObject({ code: 'not_found', issues: [] });
    expect(error.request_id).toMatch(/^req_[0-9a-f]{32}$/);
    expect(res.headers['x-request-id']).toBe(error.request_id);
  });

  it('hides a 500\'s cause from the client and logs it with the request id', async () => {
    const res = await api.sut.inject({ method: 'GET', url: '/boom' });
    expect(res.statusCode).toBe(500);
    const error = errorOf(res);
    expect(error).toMatchObject({ code: 'internal', message: 'internal error', issues: [] });
    expect(res.body).not.toContain('secret_user');
    expect(res.body).not.toContain('10.0.0.7');
    const logged = logLines.map((line) => JSON.parse(line)).find((entry) => entry.request_id === error.request_id);
    expect(logged).toBeDefined();
    expect(logged.err.message).toContain('secret_user');
  });
});

describe('per-tenant rate limits', () => {
  it('answers 429 rate_limited with Retry-After past the starter limit, per tenant, counted across API processes', async () => {
    const starter = await createOrg(db.owner, 'starter');
    const neighbour = await createOrg(db.owner, 'starter');
    const token = await sessionFor(starter);
    const second = await buildTestApi(db.config); // another API process sharing the Redis store
    try {
      for (let i = 0; i < STARTER_LIMIT; i++) {
        const app = i % 2 === 0 ? api.sut : second.sut;
        const res = await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(token) });
        expect(res.statusCode, `request ${i + 1}`).toBe(200);
        expect(res.headers['x-ratelimit-limit']).toBe(String(STARTER_LIMIT));
      }
      const limited = await second.sut.inject({ method: 'GET', url: '/v1/users', headers: bearer(token) });
      expect(limited.statusCode).toBe(429);
      expect(errorOf(limited)).toMatchObject({ code: 'rate_limited', issues: [] });
      const retryAfterS = Number(limited.headers['retry-after']);
      expect(retryAfterS).toBeGreaterThan(0);
      expect(retryAfterS).toBeLessThanOrEqual(60);

      const other = await api.sut.inject({ method: 'GET', url: '/v1/devices', headers: bearer(await sessionFor(neighbour)) });
      expect(other.statusCode).toBe(200);
    } finally {
      await second.close();
    }
  });

  it('gives the team plan its own limit and the unlimited plan none', async () => {
    const team = await sessionFor(await createOrg(db.owner, 'team'));
    for (let i = 0; i < TEAM_LIMIT; i++) {
      expect((await api.sut.inject({ method: 'GET', url: '/v1/devices', headers: bearer(team) })).statusCode).toBe(200);
    }
    expect((await api.sut.inject({ method: 'GET', url: '/v1/devices', headers: bearer(team) })).statusCode).toBe(429);

    const unlimited = await sessionFor(await createOrg(db.owner, 'unlimited'));
    for (let i = 0; i < TEAM_LIMIT * 2; i++) {
      const res = await api.sut.inject({ method: 'GET', url: '/v1/devices', headers: bearer(unlimited) });
      expect(res.statusCode).toBe(200);
      expect(res.headers).not.toHaveProperty('x-ratelimit-limit');
    }
  });
});

describe('the api role', () => {
  it('listens on a free port, reports its endpoints, and closes idempotently', async () => {
    const runtime = new Runtime({ ...db.config, API_PORT: 0 }, createLogger('silent'));
    const role = await startRole(runtime);
    try {
      expect(role.name).toBe('api');
      expect(role.endpoints.api).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(role.endpoints.docs).toBe(`${role.endpoints.api}/v1/docs`);
      expect(role.endpoints.metrics).toBe(`${role.endpoints.api}/metrics`);
      expect(role.endpoints.api).not.toMatch(/:0$/);
      const health = await fetch(`${role.endpoints.api}/healthz`);
      expect(health.status).toBe(200);
      const unauthenticated = await fetch(`${role.endpoints.api}/v1/me`);
      expect(unauthenticated.status).toBe(401);
      expect((await unauthenticated.json()).error.code).toBe('unauthorized');
    } finally {
      await Promise.all([role.close(), role.close()]);
      await role.close();
      await runtime.close();
    }
  });
});
