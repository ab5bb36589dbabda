import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cachingAuthenticator } from '../../services/shared/credential-cache.js';
import { createServicePool } from '../../services/shared/db.js';
import { sessionTokens } from '../../services/shared/jwt.js';
import { createAuthenticator } from '../../services/shared/principal.js';
import { newApiKey, sha256 } from '../../services/shared/secrets.js';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createOrg, type TestOrg } from '../support/factories.js';

/**
 * What credentials cost the database (docs/design.md, "Credential look-ups"): a look-up is one round trip,
 * a refused credential is looked up once per few seconds, and an address trying key after key reaches the
 * database AUTH_FAILURES_PER_MIN times at most before it gets 429 — while other callers are served.
 */
const FAILURES_PER_MIN = 5;

let db: TestDatabase;
let api: TestApi;
let org: TestOrg;
let adminToken: string;
let validKey: string;
/** ReadyForQuery messages on the API's pool: one per round trip. */
let apiRoundTrips = 0;

const countRoundTrips = (pool: pg.Pool, count: () => void) =>
  pool.on('connect', (client) => (client as unknown as { connection: NodeJS.EventEmitter }).connection.on('readyForQuery', count));

beforeAll(async () => {
  db = await createTestDatabase({ AUTH_FAILURES_PER_MIN: String(FAILURES_PER_MIN) });
  api = await buildTestApi(db.config);
  countRoundTrips(api.pool, () => apiRoundTrips++);
  org = await createOrg(db.owner, 'unlimited');
  adminToken = await login(api, org);
  const created = await api.sut.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(adminToken), payload: { name: 'valid' } });
  expect(created.statusCode, created.body).toBe(201);
  validKey = created.json().data.key;
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

/** A key of this tenant's format that no one created: it reaches the database. */
const unknownKey = () => newApiKey(org.id);
/** Stores `key` as the create route would (its digest, the admin's, `devices.read`), without the route. */
const storeKey = (key: string) => asTenant(db.owner, org.id, (q) => q.query(
  `insert into api_keys (tenant_id, user_id, name, prefix, key_hash, scopes)
   select $1, id, 'stored', $2, $3, array['devices.read'] from users limit 1`, [org.id, key.slice(0, 11), sha256(key)]));
const getMe = (key: string, remoteAddress: string) => api.sut.inject({ method: 'GET', url: '/v1/me', headers: bearer(key), remoteAddress });

describe('credential look-ups in one round trip', () => {
  let pool: pg.Pool;
  let roundTrips = 0;
  beforeAll(() => {
    pool = createServicePool(db.config, 'api', 1);
    countRoundTrips(pool, () => roundTrips++);
  });
  afterAll(() => pool.end());
  beforeEach(() => { roundTrips = 0; });

  it('reads a used API key, a session and an unknown key in one round trip each', async () => {
    const authenticator = createAuthenticator(pool, sessionTokens(db.config.jwtSecret));
    await authenticator.authenticate(validKey); // stamps last_used_at (a write of its own, once a minute)
    roundTrips = 0;
    expect(await authenticator.authenticate(validKey)).toMatchObject({ kind: 'api_key', tenantId: org.id });
    expect(roundTrips).toBe(1);
    roundTrips = 0;
    expect(await authenticator.authenticate(adminToken)).toMatchObject({ kind: 'user', tenantId: org.id });
    expect(roundTrips).toBe(1);
    roundTrips = 0;
    expect(await authenticator.authenticate(unknownKey())).toBeNull();
    expect(roundTrips).toBe(1);
  });

  it('still records when a key was last used', async () => {
    const key = newApiKey(org.id);
    await storeKey(key);
    const authenticator = createAuthenticator(pool, sessionTokens(db.config.jwtSecret));
    expect(await authenticator.authenticate(key)).toMatchObject({ kind: 'api_key' });
    const { rows } = await db.owner.query('select last_used_at from api_keys where key_hash = $1', [sha256(key)]);
    expect(rows[0].last_used_at).not.toBeNull();
  });
});

describe('refused credentials are cheap', () => {
  it('looks a refused key up once, however often it is tried, and answers 401 each time', async () => {
    const key = unknownKey();
    apiRoundTrips = 0;
    const answers = await Promise.all(Array.from({ length: 30 }, () => getMe(key, '10.0.0.1')));
    expect(answers.map((r) => r.statusCode)).toEqual(Array(30).fill(401));
    for (let i = 0; i < 10; i++) expect((await getMe(key, '10.0.0.1')).statusCode).toBe(401);
    expect(apiRoundTrips).toBe(1);
  });

  it('stops an address trying key after key at the limit: 429 with Retry-After, a few look-ups in all', async () => {
    apiRoundTrips = 0;
    const burst = await Promise.all(Array.from({ length: 40 }, () => getMe(unknownKey(), '10.0.0.2')));
    const statuses = burst.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 401)).toHaveLength(FAILURES_PER_MIN);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40 - FAILURES_PER_MIN);
    expect(apiRoundTrips).toBe(FAILURES_PER_MIN);
    const limited = burst.find((r) => r.statusCode === 429)!;
    expect(errorOf(limited)).toMatchObject({ code: 'rate_limited', request_id: expect.any(String), issues: [] });
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);

    // A valid key from another address is served; the limited address stays limited, even for a fresh key.
    expect((await getMe(validKey, '10.0.0.3')).statusCode).toBe(200);
    expect((await getMe(unknownKey(), '10.0.0.2')).statusCode).toBe(429);
  });

  it('does not count valid credentials against their address', async () => {
    for (let i = 0; i < FAILURES_PER_MIN * 2; i++) {
      const created = await api.sut.inject({
        method: 'POST', url: '/v1/api-keys', headers: bearer(adminToken), payload: { name: `k${i}` }, remoteAddress: '10.0.0.4',
      });
      expect(created.statusCode).toBe(201);
      expect((await getMe(created.json().data.key, '10.0.0.4')).statusCode).toBe(200);
    }
  });

  it('serves a key created after its refusal was remembered (creation forgets refusals)', async () => {
    const key = newApiKey(org.id);
    const authenticator = cachingAuthenticator(createAuthenticator(api.pool, api.tokens));
    expect(await authenticator.authenticate(key)).toBeNull();
    // Created (here as the create route's transaction would): still refused from memory ...
    await storeKey(key);
    expect(await authenticator.authenticate(key)).toBeNull();
    // ... until the creation is announced, as POST /v1/api-keys does.
    authenticator.credentialsAdded();
    expect(await authenticator.authenticate(key)).toMatchObject({ kind: 'api_key', scopes: ['devices.read'] });
  });

  it('serves a user re-enabled after their key was refused', async () => {
    const email = `back-${Date.now()}@example.com`;
    const user = await api.sut.inject({ method: 'POST', url: '/v1/users', headers: bearer(adminToken), payload: { email, password: 'a long enough password', role: 'admin' } });
    expect(user.statusCode, user.body).toBe(201);
    const userToken = await login(api, org, email, 'a long enough password');
    const key = (await api.sut.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(userToken), payload: { name: 'back' } })).json().data.key;
    const setDisabled = (disabled: boolean) =>
      api.sut.inject({ method: 'PATCH', url: `/v1/users/${user.json().data.id}`, headers: bearer(adminToken), payload: { disabled } });
    expect((await setDisabled(true)).statusCode).toBe(200);
    expect((await getMe(key, '10.0.0.5')).statusCode).toBe(401);
    expect((await setDisabled(false)).statusCode).toBe(200);
    expect((await getMe(key, '10.0.0.5')).statusCode).toBe(200);
  });
});
