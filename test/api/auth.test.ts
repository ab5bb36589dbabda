import { createSigner } from 'fast-jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createOrg, type TestOrg } from '../support/factories.js';

const LOGIN_ATTEMPTS = 4;

let db: TestDatabase;
let api: TestApi;
let org: TestOrg;

beforeAll(async () => {
  db = await createTestDatabase({ LOGIN_ATTEMPTS_PER_MIN: String(LOGIN_ATTEMPTS) });
  api = await buildTestApi(db.config);
  org = await createOrg(db.owner, 'team');
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

const me = (headers: Record<string, string>) => api.sut.inject({ method: 'GET', url: '/v1/me', headers });

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('POST /v1/auth/token', () => {
  it('returns a JWT and its expiry for the right credentials, and the token works', async () => {
    const res = await api.sut.inject({
      method: 'POST',
      url: '/v1/auth/token',
      payload: { email: org.adminEmail.toUpperCase(), password: org.adminPassword, organization_id: org.id },
    });
    expect(res.statusCode).toBe(200);
    const { token, expires_at } = res.json().data;
    expect(token.split('.')).toHaveLength(3);
    const ttlS = (Date.parse(expires_at) - Date.now()) / 1000;
    expect(ttlS).toBeGreaterThan(org.token_ttl_s - 60);
    expect(ttlS).toBeLessThanOrEqual(org.token_ttl_s);

    const who = await me(bearer(token));
    expect(who.statusCode).toBe(200);
    expect(who.json().data).toMatchObject({
      kind: 'user',
      tenant_id: org.id,
      plan: 'team',
      api_key: null,
      user: { email: org.adminEmail, role: 'admin' },
      organization: { id: org.id },
    });
    expect(who.json().data.scopes).toContain('users.write');
  });

  it('uses the organization\'s token lifetime', async () => {
    const other = await createOrg(db.owner, 'starter');
    await asTenant(db.owner, other.id, (c) => c.query('update organizations set token_ttl_s = 120 where id = $1', [other.id]));
    const res = await api.sut.inject({
      method: 'POST', url: '/v1/auth/token', payload: { email: other.adminEmail, password: other.adminPassword, organization_id: other.id },
    });
    const ttlS = (Date.parse(res.json().data.expires_at) - Date.now()) / 1000;
    expect(ttlS).toBeGreaterThan(60);
    expect(ttlS).toBeLessThanOrEqual(120);
  });

  it('answers 401 for a wrong password, an unknown email and the wrong organization, alike', async () => {
    const other = await createOrg(db.owner);
    const attempts = [
      { email: org.adminEmail, password: 'wrong password!', organization_id: org.id },
      { email: 'nobody@example.com', password: org.adminPassword, organization_id: org.id },
      { email: org.adminEmail, password: org.adminPassword, organization_id: other.id },
    ];
    for (const payload of attempts) {
      const res = await api.sut.inject({ method: 'POST', url: '/v1/auth/token', payload });
      expect(res.statusCode).toBe(401);
      expect(errorOf(res)).toMatchObject({ code: 'unauthorized', message: 'wrong email, password or organization', issues: [] });
      expect(errorOf(res).request_id).toBe(res.headers['x-request-id']);
    }
  });

  it('answers 400 with issues for a malformed request', async () => {
    const res = await api.sut.inject({ method: 'POST', url: '/v1/auth/token', payload: { email: 'a@b.co', organization_id: 'org_123' } });
    expect(res.statusCode).toBe(400);
    const error = errorOf(res);
    expect(error.code).toBe('bad_request');
    expect(error.issues.map((i) => i.path).sort()).toEqual(['organization_id', 'password']);
  });

  it('limits failed sign-ins per email and organization with 429 and Retry-After', async () => {
    const target = await createOrg(db.owner);
    const attempt = (password: string) => api.sut.inject({
      method: 'POST', url: '/v1/auth/token', payload: { email: target.adminEmail, password, organization_id: target.id },
    });
    // Successful sign-ins do not count.
    for (let i = 0; i < LOGIN_ATTEMPTS + 1; i++) expect((await attempt(target.adminPassword)).statusCode).toBe(200);
    for (let i = 0; i < LOGIN_ATTEMPTS; i++) expect((await attempt('guess-' + i)).statusCode).toBe(401);
    const limited = await attempt(target.adminPassword);
    expect(limited.statusCode).toBe(429);
    expect(errorOf(limited).code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another user of the same organization is not affected.
    const res = await api.sut.inject({
      method: 'POST', url: '/v1/auth/token', payload: { email: org.adminEmail, password: org.adminPassword, organization_id: org.id },
    });
    expect(res.statusCode).toBe(200);
  });
});

describe('organization ids and failed sign-ins', () => {
  const signIn = (target: TestOrg, organization_id: string, password: string) => api.sut.inject({
    method: 'POST', url: '/v1/auth/token', payload: { email: target.adminEmail, password, organization_id },
  });

  it('signs in with any letter case of the id and gives a token for the canonical id', async () => {
    const target = await createOrg(db.owner);
    const res = await signIn(target, target.id.toUpperCase(), target.adminPassword);
    expect(res.statusCode).toBe(200);
    const token = res.json().data.token as string;
    expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).tid).toBe(target.id);
    expect((await me(bearer(token))).json().data.tenant_id).toBe(target.id);
    for (const spelling of [`urn:uuid:${target.id}`, `{${target.id}}`, target.id.replaceAll('-', '')]) {
      expect((await signIn(target, spelling, target.adminPassword)).statusCode, spelling).toBe(400);
    }
  });

  it('counts failed sign-ins per canonical organization, whatever spelling each attempt uses', async () => {
    const target = await createOrg(db.owner);
    const spellings = [target.id, target.id.toUpperCase(), `${target.id.slice(0, 8).toUpperCase()}${target.id.slice(8)}`, target.id.replace(/[a-f]/, (c) => c.toUpperCase())];
    for (let i = 0; i < LOGIN_ATTEMPTS; i++) expect((await signIn(target, spellings[i % spellings.length]!, `guess-${i}`)).statusCode).toBe(401);
    for (const spelling of spellings) expect((await signIn(target, spelling, `guess-again`)).statusCode, spelling).toBe(429);
  });

  it('lets no more than the limit of a concurrent burst reach the password check', async () => {
    const target = await createOrg(db.owner);
    const burst = await Promise.all(Array.from({ length: 24 }, (_, i) => signIn(target, i % 2 ? target.id : target.id.toUpperCase(), `burst-${i}`)));
    const statuses = burst.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 401)).toHaveLength(LOGIN_ATTEMPTS);
    expect(statuses.filter((s) => s === 429)).toHaveLength(24 - LOGIN_ATTEMPTS);
    // The right password is refused too until the window ends: the guesses were counted.
    expect((await signIn(target, target.id, target.adminPassword)).statusCode).toBe(429);
  });
});

describe('every route but sign-in', () => {
  // Authentication is a hook on each route: one without it would answer a caller with no credential.
  it('answers 401 in the error shape to a request without a credential, or with a bad one, before any of its work', async () => {
    const doc = (await api.sut.inject({ method: 'GET', url: '/v1/openapi.json' })).json() as {
      paths: Record<string, Record<string, { security?: unknown[] }>>;
    };
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops)
      .filter(([, op]) => op.security === undefined) // the document's default, bearer; sign-in says `security: []`
      .map(([method, _op]) => ({ method: method.toUpperCase() as 'GET', url: path.replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000') })));
    expect(operations.length).toBeGreaterThan(100);
    const wrong: string[] = [];
    for (const { method, url } of operations) {
      for (const headers of [{}, { authorization: 'Bearer not-a-token' }]) {
        const res = await api.sut.inject({ method, url, headers });
        if (res.statusCode !== 401 || errorOf(res).code !== 'unauthorized') wrong.push(`${res.statusCode} ${method} ${url}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('bearer tokens', () => {
  it('rejects a missing or non-bearer Authorization header with 401', async () => {
    const headerSets: Record<string, string>[] = [{}, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, { authorization: 'Bearer' }];
    for (const headers of headerSets) {
      const res = await me(headers);
      expect(res.statusCode).toBe(401);
      expect(errorOf(res).code).toBe('unauthorized');
      expect(res.headers['www-authenticate']).toBe('Bearer');
    }
  });

  it('rejects an expired token with 401', async () => {
    const nowS = Math.floor(Date.now() / 1000);
    const sign = createSigner({ key: db.config.jwtSecret, algorithm: 'HS256', iss: 'fieldops' });
    const expired = sign({ sub: 'x', tid: org.id, role: 'admin', scopes: ['users.read'], iat: nowS - 120, exp: nowS - 60 });
    const res = await me(bearer(expired));
    expect(res.statusCode).toBe(401);
    expect(errorOf(res).code).toBe('unauthorized');
  });

  it('rejects forged tokens: another secret, alg none, a tampered payload', async () => {
    const token = await login(api, org);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const otherOrg = await createOrg(db.owner);

    const otherSecret = createSigner({ key: 'x'.repeat(48), algorithm: 'HS256', iss: 'fieldops', expiresIn: 60_000 })(claims);
    const algNone = `${base64url({ alg: 'none', typ: 'JWT' })}.${payload}.`;
    const tampered = `${header}.${base64url({ ...claims, tid: otherOrg.id, scopes: [...claims.scopes, 'superpower'] })}.${signature}`;
    const garbage = 'not.a.jwt';

    for (const forged of [otherSecret, algNone, tampered, garbage]) {
      const res = await me(bearer(forged));
      expect(res.statusCode).toBe(401);
      expect(errorOf(res).code).toBe('unauthorized');
    }
    expect((await me(bearer(token))).statusCode).toBe(200);
  });

  it('keeps a disabled user from signing in', async () => {
    const admin = await login(api, org);
    const created = await api.sut.inject({
      method: 'POST', url: '/v1/users', headers: bearer(admin),
      payload: { email: 'leaver@example.com', password: 'a long password', role: 'viewer' },
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().data.id;
    expect((await api.sut.inject({ method: 'PATCH', url: `/v1/users/${id}`, headers: bearer(admin), payload: { disabled: true } })).statusCode).toBe(200);
    const res = await api.sut.inject({
      method: 'POST', url: '/v1/auth/token', payload: { email: 'leaver@example.com', password: 'a long password', organization_id: org.id },
    });
    expect(res.statusCode).toBe(401);
  });
});
