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
  org = await createOrg(db.owner, 'team');
  token = await login(api, org);
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

type Method = 'GET' | 'POST' | 'PATCH';
const inject = (method: Method, url: string, payload?: object, as = token, headers: Record<string, string> = {}) =>
  api.sut.inject({ method, url, headers: { ...bearer(as), ...headers }, ...(payload ? { payload } : {}) });
const names = (res: { json(): { data: { name: string }[] } }) => res.json().data.map((e) => e.name);

describe('/v1/employees', () => {
  it('adds an employee with contact, role, badge and certifications; reads, lists and changes them', async () => {
    const created = await inject('POST', '/v1/employees', {
      name: 'Grace Hopper', email: 'grace@example.com', phone: '+1 555 0100', role: 'Foreman', badge_code: 'B-1001',
      certifications: [
        { name: 'Forklift', issuer: 'OSHA', expires_on: '2026-03-31' },
        { name: 'First aid', expires_on: '2025-09-30' },
        { name: 'Welding' },
      ],
    });
    expect(created.statusCode).toBe(201);
    expect(created.headers.etag).toBe('"1"');
    const grace = created.json().data;
    expect(grace).toMatchObject({
      name: 'Grace Hopper', email: 'grace@example.com', phone: '+1 555 0100', role: 'Foreman', badge_code: 'B-1001', version: 1,
      certifications: [
        { name: 'Forklift', issuer: 'OSHA', expires_on: '2026-03-31' },
        { name: 'First aid', issuer: null, expires_on: '2025-09-30' },
        { name: 'Welding', issuer: null, expires_on: null },
      ],
      certification_expires_on: '2025-09-30',
    });
    expect((await inject('GET', `/v1/employees/${grace.id}`)).json().data).toEqual(grace);

    const renewed = await inject('PATCH', `/v1/employees/${grace.id}`, { certifications: [{ name: 'First aid', expires_on: '2027-09-30' }], phone: null });
    expect(renewed.json().data).toMatchObject({ certifications: [{ name: 'First aid', issuer: null, expires_on: '2027-09-30' }], certification_expires_on: '2027-09-30', phone: null, version: 2 });
    const none = await inject('PATCH', `/v1/employees/${grace.id}`, { certifications: [] }, token, { 'if-match': '"2"' });
    expect(none.json().data).toMatchObject({ certifications: [], certification_expires_on: null, version: 3 });
    expect((await inject('PATCH', `/v1/employees/${grace.id}`, { role: 'x' }, token, { 'if-match': '"2"' })).statusCode).toBe(409);
  });

  it('filters by certifications expiring before a date, role, name, email and badge', async () => {
    const other = await createOrg(db.owner);
    const t = await login(api, other);
    const add = (body: object) => inject('POST', '/v1/employees', body, t);
    await add({ name: 'Ann', role: 'Technician', email: 'ann@example.com', certifications: [{ name: 'Gas', expires_on: '2025-01-15' }] });
    await add({ name: 'Ben', role: 'technician', badge_code: 'B-2', certifications: [{ name: 'Gas', expires_on: '2025-06-01' }, { name: 'Electric', expires_on: '2030-01-01' }] });
    await add({ name: 'Cy', role: 'Driver', certifications: [{ name: 'HGV' }] });
    await add({ name: 'Di' });
    const list = (query: string) => inject('GET', `/v1/employees?${query}`, undefined, t);

    expect(names(await list('certification_expires_before=2025-03-01'))).toEqual(['Ann']);
    expect(names(await list('certification_expires_before=2025-07-01&sort=certification_expires_on'))).toEqual(['Ann', 'Ben']);
    expect(names(await list('certification_expires_before=2099-01-01'))).toEqual(['Ann', 'Ben']);
    expect(names(await list('role=TECHNICIAN'))).toEqual(['Ann', 'Ben']);
    expect(names(await list('name=i&sort=-name'))).toEqual(['Di']);
    expect(names(await list('email=ANN@example.com'))).toEqual(['Ann']);
    expect(names(await list('badge_code=B-2'))).toEqual(['Ben']);
    expect(names(await list('sort=-name&limit=2'))).toEqual(['Di', 'Cy']);
    expect((await list('limit=2')).json().meta).toMatchObject({ total: 4, next_cursor: expect.any(String) });

    const bad = await list('certification_expires_before=soon');
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).issues).toEqual([{ path: 'certification_expires_before', message: expect.any(String) }]);
  });

  it('validates: 400 with issues, a badge taken by another employee is 409', async () => {
    const bad = await inject('POST', '/v1/employees', {
      name: 'x', email: 'nope', certifications: [{ name: '', expires_on: '2025-02-30' }, { issuer: 'y' }],
    });
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).issues.map((i) => i.path).sort()).toEqual(['certifications.0.expires_on', 'certifications.0.name', 'certifications.1.name', 'email']);
    expect((await inject('POST', '/v1/employees', { name: 'x', badge_code: ' padded ' })).statusCode).toBe(400);

    await inject('POST', '/v1/employees', { name: 'First', badge_code: 'B-77' });
    const taken = await inject('POST', '/v1/employees', { name: 'Second', badge_code: 'B-77' });
    expect(taken.statusCode).toBe(409);
    expect(errorOf(taken).issues).toEqual([{ path: 'badge_code', message: 'is taken by another employee' }]);
    const second = (await inject('POST', '/v1/employees', { name: 'Second' })).json().data;
    expect((await inject('PATCH', `/v1/employees/${second.id}`, { badge_code: 'B-77' })).statusCode).toBe(409);
    // Another tenant may use the same badge.
    const other = await createOrg(db.owner);
    expect((await inject('POST', '/v1/employees', { name: 'Theirs', badge_code: 'B-77' }, await login(api, other))).statusCode).toBe(201);
  });

  it('another tenant\'s employee is 404; technicians may not read the roster, viewers may not change it', async () => {
    const mine = (await inject('POST', '/v1/employees', { name: 'Hidden' })).json().data;
    const other = await createOrg(db.owner);
    const t = await login(api, other);
    expect((await inject('GET', `/v1/employees/${mine.id}`, undefined, t)).statusCode).toBe(404);
    expect((await inject('PATCH', `/v1/employees/${mine.id}`, { name: 'x' }, t)).statusCode).toBe(404);
    expect((await inject('GET', `/v1/employees?name=Hidden`, undefined, t)).json().data).toEqual([]);

    const as = async (role: string) => {
      const email = `${role}-${randomUUID()}@example.com`;
      await inject('POST', '/v1/users', { email, password: 'a long password', role });
      return login(api, org, email, 'a long password');
    };
    const tech = await as('technician');
    expect((await inject('GET', '/v1/employees', undefined, tech)).statusCode).toBe(403);
    const viewer = await as('viewer');
    expect((await inject('GET', `/v1/employees/${mine.id}`, undefined, viewer)).statusCode).toBe(200);
    const denied = await inject('POST', '/v1/employees', { name: 'x' }, viewer);
    expect(denied.statusCode).toBe(403);
    expect(errorOf(denied).message).toContain('employees.write');
  });
});
