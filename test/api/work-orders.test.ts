import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../services/shared/db.js';
import { createWorkOrderRepository } from '../../services/api/repositories/work-orders.js';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { GeofenceHarness } from '../geofence/harness.js';

let db: TestDatabase;
let api: TestApi;
let h: GeofenceHarness;
let org: TestOrg;
let token: string;
let ada: string;
let bob: string;

/** A 1×1 PNG, and the first bytes of a JPEG (the type is decided by the bytes). */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]), Buffer.alloc(64, 7), Buffer.from([0xff, 0xd9])]);
const dataUrl = (bytes: Buffer, type = 'image/png') => `data:${type};base64,${bytes.toString('base64')}`;

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
const inject = (method: Method, url: string, payload?: object, headers: Record<string, string> = {}, as = token) =>
  api.sut.inject({ method, url, headers: { ...bearer(as), ...headers }, ...(payload ? { payload } : {}) });

async function createOrder(fields: Record<string, unknown> = {}) {
  const res = await inject('POST', '/v1/work-orders', { title: `Job ${randomUUID().slice(0, 6)}`, ...fields });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data as { id: string; status: string; version: number; [k: string]: unknown };
}

const act = (id: string, action: string, payload?: object) => inject('POST', `/v1/work-orders/${id}/${action}`, payload);

async function employee(name: string): Promise<string> {
  const res = await inject('POST', '/v1/employees', { name });
  expect(res.statusCode).toBe(201);
  return res.json().data.id;
}

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config);
  h = new GeofenceHarness(db);
  h.startRelay({ pollMs: 50 });
  org = await createOrg(db.owner, 'team');
  token = await login(api, org);
  ada = await employee('Ada');
  bob = await employee('Bob');
});

afterAll(async () => {
  await h?.close();
  await api?.close();
  await db?.drop();
});

describe('/v1/work-orders CRUD', () => {
  it('creates a draft, or a scheduled order with a window, or an assigned one with an assignee; reads and changes it', async () => {
    const client = (await inject('POST', '/v1/clients', { name: 'Acme Quarry' })).json().data;
    const site = (await inject('POST', '/v1/sites', { name: 'North pit', client_id: client.id })).json().data;
    const asset = (await inject('POST', '/v1/assets', { name: 'Excavator 7', make: 'CAT', model: '320' })).json().data;

    const draft = await inject('POST', '/v1/work-orders', {
      title: 'Replace hydraulic hose', description: 'Leaking at the boom', priority: 'high',
      client_id: client.id, site_id: site.id, asset_id: asset.id, notes: 'Bring a 2 m hose',
    });
    expect(draft.statusCode).toBe(201);
    expect(draft.headers.etag).toBe('"1"');
    expect(draft.json().data).toMatchObject({
      title: 'Replace hydraulic hose', description: 'Leaking at the boom', priority: 'high', status: 'draft',
      client_id: client.id, site_id: site.id, asset_id: asset.id, assignee_id: null, notes: 'Bring a 2 m hose',
      scheduled_start: null, scheduled_end: null, signoff: null, archived_at: null, version: 1,
    });

    const scheduled = await createOrder({ scheduled_start: '2025-06-02T08:00:00Z', scheduled_end: '2025-06-02T12:00:00Z' });
    expect(scheduled).toMatchObject({ status: 'scheduled', priority: 'normal', scheduled_start: '2025-06-02T08:00:00.000Z' });
    const assigned = await createOrder({ assignee_id: ada });
    expect(assigned).toMatchObject({ status: 'assigned', assignee_id: ada });

    const id = draft.json().data.id;
    const read = await inject('GET', `/v1/work-orders/${id}`);
    expect(read.statusCode).toBe(200);
    expect(read.json().data).toEqual(draft.json().data);

    const patched = await inject('PATCH', `/v1/work-orders/${id}`, { title: 'Replace two hoses', priority: 'urgent', notes: null });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().data).toMatchObject({ title: 'Replace two hoses', priority: 'urgent', notes: null, status: 'draft', version: 2 });
    // A window makes a draft scheduled, and clearing it makes it a draft again.
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { scheduled_start: '2025-06-03T08:00:00Z' })).json().data.status).toBe('scheduled');
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { scheduled_start: null })).json().data.status).toBe('draft');
  });

  it('validates: 400 with issues for bad fields, unknown references and a window that ends before it starts', async () => {
    const bad = await inject('POST', '/v1/work-orders', { title: '', priority: 'asap', scheduled_start: 'tomorrow', colour: 'red' });
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).issues.map((i) => i.path).sort()).toEqual(['colour', 'priority', 'scheduled_start', 'title']);
    expect((await inject('POST', '/v1/work-orders', {})).statusCode).toBe(400);

    const refs = await inject('POST', '/v1/work-orders', { title: 'x', client_id: randomUUID(), asset_id: randomUUID(), assignee_id: randomUUID() });
    expect(refs.statusCode).toBe(400);
    expect(errorOf(refs).issues.map((i) => i.path).sort()).toEqual(['asset_id', 'assignee_id', 'client_id']);

    const window = await inject('POST', '/v1/work-orders', { title: 'x', scheduled_start: '2025-06-02T12:00:00Z', scheduled_end: '2025-06-02T08:00:00Z' });
    expect(errorOf(window)).toMatchObject({ code: 'bad_request', issues: [{ path: 'scheduled_end' }] });
    const { id } = await createOrder({ scheduled_start: '2025-06-02T08:00:00Z' });
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { scheduled_end: '2025-06-01T08:00:00Z' })).statusCode).toBe(400);
    expect((await inject('PATCH', `/v1/work-orders/${id}`, {})).statusCode).toBe(400);
    // A date PostgreSQL cannot hold is a 400 too, never a 500.
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { scheduled_start: '0000-01-01T00:00:00Z' })).statusCode).toBe(400);
  });

  it('DELETE archives: the order leaves the list, stays readable, and can no longer change', async () => {
    const { id } = await createOrder({ title: 'To be archived' });
    expect((await inject('DELETE', `/v1/work-orders/${id}`)).statusCode).toBe(204);
    const read = (await inject('GET', `/v1/work-orders/${id}`)).json().data;
    expect(read.archived_at).toEqual(expect.any(String));
    expect((await inject('GET', '/v1/work-orders?title=To%20be%20archived')).json().data).toEqual([]);
    expect((await inject('GET', '/v1/work-orders?title=To%20be%20archived&archived=true')).json().data.map((o: { id: string }) => o.id)).toEqual([id]);
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { title: 'x' })).statusCode).toBe(409);
    expect((await act(id, 'assign', { employee_id: ada })).statusCode).toBe(409);
    expect((await inject('DELETE', `/v1/work-orders/${id}`)).statusCode).toBe(204);
    expect((await inject('DELETE', `/v1/work-orders/${randomUUID()}`)).statusCode).toBe(404);
  });
});

describe('the state machine', () => {
  it('walks draft → assigned → en_route → in_progress → on_hold → in_progress → completed', async () => {
    const { id } = await createOrder();
    const assigned = await act(id, 'assign', { employee_id: ada });
    expect(assigned.statusCode).toBe(200);
    expect(assigned.json().data).toMatchObject({ status: 'assigned', assignee_id: ada });
    expect((await act(id, 'dispatch')).json().data.status).toBe('en_route');
    const started = (await act(id, 'start')).json().data;
    expect(started).toMatchObject({ status: 'in_progress', started_at: expect.any(String) });
    expect((await act(id, 'hold')).json().data.status).toBe('on_hold');
    const resumed = (await act(id, 'resume')).json().data;
    expect(resumed.status).toBe('in_progress');
    expect(resumed.started_at).toBe(started.started_at);
    const completed = await act(id, 'complete', { signed_by: 'Carol Client', signature: dataUrl(PNG) });
    expect(completed.statusCode).toBe(200);
    expect(completed.json().data).toMatchObject({
      status: 'completed', completed_at: expect.any(String),
      signoff: { signed_by: 'Carol Client', signed_at: expect.any(String), signature: { content_type: 'image/png', size: PNG.length } },
    });
    const image = await inject('GET', `/v1/work-orders/${id}/signature`);
    expect(image.statusCode).toBe(200);
    expect(image.headers['content-type']).toBe('image/png');
    expect(image.rawPayload.equals(PNG)).toBe(true);
  });

  it('scheduled → assigned → in_progress (start without dispatch); a hold from scheduled resumes to scheduled; cancel is final', async () => {
    const { id } = await createOrder({ scheduled_start: '2025-07-01T08:00:00Z' });
    expect((await act(id, 'hold')).json().data.status).toBe('on_hold');
    expect((await act(id, 'resume')).json().data.status).toBe('scheduled');
    await act(id, 'assign', { employee_id: bob });
    expect((await act(id, 'start')).json().data.status).toBe('in_progress');
    const cancelled = (await act(id, 'cancel')).json().data;
    expect(cancelled).toMatchObject({ status: 'cancelled', cancelled_at: expect.any(String) });
    for (const action of ['start', 'hold', 'resume', 'cancel', 'dispatch']) {
      const res = await act(id, action);
      expect(res.statusCode, action).toBe(409);
    }
  });

  it('an illegal move is 409 conflict naming the current state, and changes nothing', async () => {
    const { id } = await createOrder();
    const cases: [string, object | undefined, string][] = [
      ['start', undefined, 'draft'],
      ['dispatch', undefined, 'draft'],
      ['complete', { signed_by: 'x' }, 'draft'],
      ['resume', undefined, 'draft'],
      ['hold', undefined, 'draft'],
    ];
    for (const [action, body, state] of cases) {
      const res = await act(id, action, body);
      expect(res.statusCode, action).toBe(409);
      expect(errorOf(res)).toMatchObject({ code: 'conflict', message: expect.stringContaining(state), issues: [{ path: 'status', message: `is ${state}` }] });
    }
    await act(id, 'assign', { employee_id: ada });
    // assign only from draft or scheduled; complete only from in_progress.
    expect(errorOf(await act(id, 'assign', { employee_id: bob })).message).toContain('assigned');
    expect(errorOf(await act(id, 'complete', { signed_by: 'x' })).message).toContain('assigned');
    const read = (await inject('GET', `/v1/work-orders/${id}`)).json().data;
    expect(read).toMatchObject({ status: 'assigned', assignee_id: ada, version: 2 });
  });

  it('PATCH moves status and assignee along the same machine', async () => {
    const { id } = await createOrder();
    // Assigning by PATCH is an assignment; a status that skips a step is refused.
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { status: 'in_progress' })).statusCode).toBe(409);
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { status: 'assigned' })).statusCode).toBe(400);
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { assignee_id: ada })).json().data).toMatchObject({ status: 'assigned', assignee_id: ada });
    // Unassigning an assigned order takes it back to draft; assigning again, then reassigning under way.
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { assignee_id: null })).json().data).toMatchObject({ status: 'draft', assignee_id: null });
    await inject('PATCH', `/v1/work-orders/${id}`, { status: 'assigned', assignee_id: ada });
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { status: 'in_progress' })).json().data.status).toBe('in_progress');
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { assignee_id: bob })).json().data).toMatchObject({ status: 'in_progress', assignee_id: bob });
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { assignee_id: null })).statusCode).toBe(409);
    const complete = await inject('PATCH', `/v1/work-orders/${id}`, { status: 'completed' });
    expect(complete.statusCode).toBe(400);
    expect(errorOf(complete).message).toContain('/complete');
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { status: 'on_hold' })).json().data.status).toBe('on_hold');
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { status: 'in_progress' })).json().data.status).toBe('in_progress');
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { status: 'cancelled' })).json().data.status).toBe('cancelled');
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { status: 'draft' })).statusCode).toBe(409);
  });

  it('checks the signature by its bytes and its size', async () => {
    const started = async () => {
      const { id } = await createOrder({ assignee_id: ada });
      await act(id, 'start');
      return id;
    };
    const id = await started();
    const text = await act(id, 'complete', { signed_by: 'X', signature: dataUrl(Buffer.from('just text, not an image'), 'image/png') });
    expect(text.statusCode).toBe(400);
    expect(errorOf(text).issues).toEqual([{ path: 'signature', message: 'must be a PNG or JPEG image' }]);
    expect((await act(id, 'complete', { signed_by: 'X', signature: 'not a data url' })).statusCode).toBe(400);
    expect((await act(id, 'complete', { signed_by: 'X', signature: 'data:image/png;base64,@@@@' })).statusCode).toBe(400);
    const big = Buffer.concat([PNG, Buffer.alloc(10 * 1024 * 1024)]);
    const tooBig = await act(id, 'complete', { signed_by: 'X', signature: dataUrl(big) });
    expect(tooBig.statusCode).toBe(400);
    expect(errorOf(tooBig).issues[0]).toMatchObject({ path: 'signature' });
    expect((await inject('GET', `/v1/work-orders/${id}`)).json().data.status).toBe('in_progress');

    // A JPEG declared as PNG is stored as what it is; a sign-off without an image is a signer's name.
    const jpeg = (await act(id, 'complete', { signed_by: 'Dee', signature: dataUrl(JPEG, 'image/png') })).json().data;
    expect(jpeg.signoff.signature).toEqual({ content_type: 'image/jpeg', size: JPEG.length });
    const other = await started();
    const unsigned = (await act(other, 'complete', { signed_by: 'Eve' })).json().data;
    expect(unsigned.signoff).toMatchObject({ signed_by: 'Eve', signature: null });
    expect((await inject('GET', `/v1/work-orders/${other}/signature`)).statusCode).toBe(404);
  });
});

describe('history', () => {
  it('keeps every change: who, when, the status from → to, and the fields', async () => {
    const { id } = await createOrder({ title: 'History' });
    await inject('PATCH', `/v1/work-orders/${id}`, { priority: 'low' });
    await act(id, 'assign', { employee_id: ada });
    await act(id, 'start');
    await act(id, 'complete', { signed_by: 'Fay' });
    const res = await inject('GET', `/v1/work-orders/${id}/history`);
    expect(res.statusCode).toBe(200);
    const { data, meta } = res.json();
    expect(meta.total).toBe(5);
    const me = (await inject('GET', '/v1/me')).json().data;
    expect(data.map((e: { version: number; action: string; from: string | null; to: string }) => [e.version, e.action, e.from, e.to])).toEqual([
      [1, 'created', null, 'draft'],
      [2, 'updated', 'draft', 'draft'],
      [3, 'assign', 'draft', 'assigned'],
      [4, 'start', 'assigned', 'in_progress'],
      [5, 'complete', 'in_progress', 'completed'],
    ]);
    for (const entry of data) expect(entry).toMatchObject({ changed_by: me.user?.id ?? me.id, api_key_id: null, changed_at: expect.any(String) });
    expect(data[1].changes).toEqual({ priority: { from: 'normal', to: 'low' } });
    expect(data[2].changes).toMatchObject({ status: { from: 'draft', to: 'assigned' }, assignee_id: { from: null, to: ada } });
    expect(data[4].changes.signoff.to).toMatchObject({ signed_by: 'Fay' });

    const newest = (await inject('GET', `/v1/work-orders/${id}/history?sort=-version&limit=2`)).json();
    expect(newest.data.map((e: { version: number }) => e.version)).toEqual([5, 4]);
    const next = (await inject('GET', `/v1/work-orders/${id}/history?cursor=${newest.meta.next_cursor}&limit=2`)).json();
    expect(next.data.map((e: { version: number }) => e.version)).toEqual([3, 2]);
    expect((await inject('GET', `/v1/work-orders/${randomUUID()}/history`)).statusCode).toBe(404);
  });

  it('records the API key that made a change', async () => {
    const key = (await inject('POST', '/v1/api-keys', { name: 'integration' }));
    // API keys need the unlimited plan or the api add-on: this tenant is on team.
    expect(key.statusCode).toBe(402);
    const unlimited = await createOrg(db.owner, 'unlimited');
    const session = await login(api, unlimited);
    const created = (await inject('POST', '/v1/api-keys', { name: 'integration' }, {}, session)).json().data;
    const order = (await inject('POST', '/v1/work-orders', { title: 'By key' }, {}, created.key)).json().data;
    const [entry] = (await inject('GET', `/v1/work-orders/${order.id}/history`, undefined, {}, created.key)).json().data;
    expect(entry).toMatchObject({ api_key_id: created.id, changed_by: created.user_id });
  });
});

describe('lists', () => {
  it('filters by status, assignee, priority, client, site, asset and time range, and sorts', async () => {
    const other = await createOrg(db.owner);
    const t = await login(api, other);
    const as = (method: Method, url: string, payload?: object) => inject(method, url, payload, {}, t);
    const emp = (await as('POST', '/v1/employees', { name: 'Gus' })).json().data.id;
    const client = (await as('POST', '/v1/clients', { name: 'Bay Port' })).json().data.id;
    const site = (await as('POST', '/v1/sites', { name: 'Dock 4', client_id: client })).json().data.id;
    const asset = (await as('POST', '/v1/assets', { name: 'Reach stacker' })).json().data.id;
    const make = async (fields: object) => (await as('POST', '/v1/work-orders', { title: 'W', ...fields })).json().data.id as string;
    const a = await make({ priority: 'urgent', client_id: client, site_id: site, scheduled_start: '2025-03-01T08:00:00Z' });
    const b = await make({ priority: 'low', asset_id: asset, assignee_id: emp, scheduled_start: '2025-03-05T08:00:00Z' });
    const c = await make({ priority: 'high' });
    const ids = async (query: string) => (await as('GET', `/v1/work-orders?${query}`)).json().data.map((o: { id: string }) => o.id);

    expect(await ids('')).toEqual([c, b, a]);
    expect(await ids('status=scheduled')).toEqual([a]);
    expect(await ids('status=scheduled,assigned&sort=created_at')).toEqual([a, b]);
    expect(await ids(`assignee_id=${emp}`)).toEqual([b]);
    expect(await ids('priority=high')).toEqual([c]);
    expect(await ids(`client_id=${client}`)).toEqual([a]);
    expect(await ids(`site_id=${site}`)).toEqual([a]);
    expect(await ids(`asset_id=${asset}`)).toEqual([b]);
    expect(await ids('from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z')).toEqual([a]);
    expect(await ids('from=2025-03-02T00:00:00Z&to=2025-03-10T00:00:00Z')).toEqual([b]);
    expect(await ids('sort=-priority')).toEqual([a, c, b]);
    expect(await ids('sort=scheduled_start')).toEqual([a, b, c]);
    expect(await ids('sort=title&title=w')).toHaveLength(3);

    const bad = await as('GET', '/v1/work-orders?status=done&priority=asap&from=yesterday&sort=colour');
    expect(bad.statusCode).toBe(400);
    expect(errorOf(bad).issues.map((i) => i.path).sort()).toEqual(['from', 'priority', 'sort', 'status']);
  });

  it('pages by offset and by cursor, without gaps or repeats, to the edges', async () => {
    const other = await createOrg(db.owner);
    const t = await login(api, other);
    const made: string[] = [];
    for (let i = 0; i < 7; i++) made.push((await inject('POST', '/v1/work-orders', { title: `P${i}` }, {}, t)).json().data.id);
    const page = async (query: string) => (await inject('GET', `/v1/work-orders?${query}`, undefined, {}, t)).json();

    const first = await page('limit=3&sort=created_at');
    expect(first.meta).toEqual({ total: 7, limit: 3, offset: 0, next_cursor: expect.any(String) });
    const seen = [...first.data.map((o: { id: string }) => o.id)];
    let cursor = first.meta.next_cursor;
    while (cursor) {
      const next = await page(`limit=3&cursor=${cursor}`);
      seen.push(...next.data.map((o: { id: string }) => o.id));
      cursor = next.meta.next_cursor;
    }
    expect(seen).toEqual(made);
    expect((await page('limit=3&offset=6&sort=created_at')).data.map((o: { id: string }) => o.id)).toEqual([made[6]]);
    expect(await page('offset=50')).toMatchObject({ data: [], meta: { total: 7, next_cursor: null } });
    expect((await page('limit=1000')).meta.limit).toBe(100);
    expect((await inject('GET', '/v1/work-orders?limit=0', undefined, {}, t)).statusCode).toBe(400);
    expect((await inject('GET', '/v1/work-orders?cursor=nonsense', undefined, {}, t)).statusCode).toBe(400);
  });
});

describe('access', () => {
  it('another tenant\'s work order is 404 on every route', async () => {
    const { id } = await createOrder();
    const other = await createOrg(db.owner);
    const t = await login(api, other);
    for (const [method, url, body] of [
      ['GET', `/v1/work-orders/${id}`], ['PATCH', `/v1/work-orders/${id}`, { title: 'x' }], ['DELETE', `/v1/work-orders/${id}`],
      ['POST', `/v1/work-orders/${id}/start`], ['POST', `/v1/work-orders/${id}/assign`, { employee_id: ada }],
      ['GET', `/v1/work-orders/${id}/history`], ['GET', `/v1/work-orders/${id}/signature`],
    ] as [Method, string, object | undefined][]) {
      const res = await inject(method, url, body, {}, t);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(errorOf(res).code).toBe('not_found');
    }
    expect((await inject('GET', '/v1/work-orders', undefined, {}, t)).json().data).toEqual([]);
    // Nor can another tenant's employee be assigned here.
    const theirs = (await inject('POST', '/v1/employees', { name: 'Hal' }, {}, t)).json().data.id;
    expect((await act(id, 'assign', { employee_id: theirs })).statusCode).toBe(400);
  });

  it('needs work_orders.write to change and work_orders.read to read', async () => {
    const { id } = await createOrder();
    const email = `viewer-${randomUUID()}@example.com`;
    await inject('POST', '/v1/users', { email, password: 'viewer password', role: 'viewer' });
    const viewer = await login(api, org, email, 'viewer password');
    expect((await inject('GET', `/v1/work-orders/${id}`, undefined, {}, viewer)).statusCode).toBe(200);
    for (const [method, url, body] of [
      ['POST', '/v1/work-orders', { title: 'x' }], ['PATCH', `/v1/work-orders/${id}`, { title: 'x' }], ['DELETE', `/v1/work-orders/${id}`],
      ['POST', `/v1/work-orders/${id}/assign`, { employee_id: ada }],
    ] as [Method, string, object | undefined][]) {
      const res = await inject(method, url, body, {}, viewer);
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(errorOf(res)).toMatchObject({ code: 'forbidden', message: expect.stringContaining('work_orders.write') });
    }
  });
});

describe('concurrency and retries', () => {
  it('If-Match: a stale version is 409 on PATCH and on actions; nothing is written', async () => {
    const { id } = await createOrder();
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { title: 'v2' }, { 'if-match': '"1"' })).headers.etag).toBe('"2"');
    expect((await inject('PATCH', `/v1/work-orders/${id}`, { title: 'v3' }, { 'if-match': '"1"' })).statusCode).toBe(409);
    const assign = await inject('POST', `/v1/work-orders/${id}/assign`, { employee_id: ada }, { 'if-match': '"1"' });
    expect(assign.statusCode).toBe(409);
    expect(errorOf(assign).issues).toEqual([{ path: 'If-Match', message: 'the current ETag is "2"' }]);
    expect((await inject('GET', `/v1/work-orders/${id}`)).json().data).toMatchObject({ title: 'v2', status: 'draft', version: 2 });
  });

  it('Idempotency-Key: a retried create or action happens once', async () => {
    const key = randomUUID();
    const title = `Once ${key}`;
    const creates = await Promise.all([1, 2, 3].map(() => inject('POST', '/v1/work-orders', { title }, { 'idempotency-key': key })));
    expect(creates.map((r) => r.statusCode)).toEqual([201, 201, 201]);
    expect(new Set(creates.map((r) => r.body)).size).toBe(1);
    expect((await inject('GET', `/v1/work-orders?title=${encodeURIComponent(title)}`)).json().meta.total).toBe(1);

    const { id } = creates[0]!.json().data;
    const assignKey = randomUUID();
    const first = await inject('POST', `/v1/work-orders/${id}/assign`, { employee_id: ada }, { 'idempotency-key': assignKey });
    const again = await inject('POST', `/v1/work-orders/${id}/assign`, { employee_id: ada }, { 'idempotency-key': assignKey });
    expect(first.statusCode).toBe(200);
    // The move is not made twice (which would be 409): the first answer is replayed.
    expect(again.statusCode).toBe(200);
    expect(again.body).toBe(first.body);
    expect((await inject('GET', `/v1/work-orders/${id}/history`)).json().meta.total).toBe(2);
  });
});

describe('events', () => {
  it('work_order.created|assigned|started|completed reach events:{tenant} through the outbox, with the order as the API answers it', async () => {
    const other = await createOrg(db.owner, 'team');
    const t = await login(api, other);
    const as = (method: Method, url: string, payload?: object) => inject(method, url, payload, {}, t);
    const emp = (await as('POST', '/v1/employees', { name: 'Ivy' })).json().data.id;
    const created = (await as('POST', '/v1/work-orders', { title: 'Evented' })).json().data;
    const assigned = (await as('POST', `/v1/work-orders/${created.id}/assign`, { employee_id: emp })).json().data;
    await as('POST', `/v1/work-orders/${created.id}/dispatch`);
    const started = (await as('POST', `/v1/work-orders/${created.id}/start`)).json().data;
    const completed = (await as('POST', `/v1/work-orders/${created.id}/complete`, { signed_by: 'Jo', signature: dataUrl(PNG) })).json().data;

    await h.published(other.id);
    const streamed = await h.streamedEvents(other.id);
    expect(streamed.map((e) => e.event)).toEqual(['work_order.created', 'work_order.assigned', 'work_order.started', 'work_order.completed']);
    expect(streamed.map((e) => e.data)).toEqual([created, assigned, started, completed]);
    for (const event of streamed) expect(event).toMatchObject({ tenant_id: other.id, id: expect.any(String), occurred_at: expect.any(String) });
    // The signature's bytes never travel in events.
    expect(JSON.stringify(streamed)).not.toContain(PNG.toString('base64'));

    // The event log finds them by type and by the assignee.
    const log = (await as('GET', `/v1/events?type=work_order.assigned&employee_id=${emp}`)).json().data;
    expect(log.map((e: { id: string }) => e.id)).toEqual([streamed[1]!.id]);
  });

  it('a rolled-back write leaves no event and no history', async () => {
    const other = await createOrg(db.owner, 'team');
    const t = await login(api, other);
    // A refused request (unknown assignee) writes nothing.
    expect((await inject('POST', '/v1/work-orders', { title: 'Refused', assignee_id: randomUUID() }, {}, t)).statusCode).toBe(400);
    // A change made by the repository in a transaction that then rolls back: its event row goes with it.
    await expect(withTenant(api.pool, other.id, async (client) => {
      await createWorkOrderRepository(client, { tenantId: other.id, userId: null, apiKeyId: null }).create({
        title: 'Rolled back', description: null, priority: 'normal', client_id: null, site_id: null, asset_id: null,
        scheduled_start: null, scheduled_end: null, notes: null, assignee_id: null,
      });
      const { rows } = await client.query("select count(*)::int as n from events where type = 'work_order.created'");
      expect(rows[0].n).toBe(1);
      throw new Error('abort');
    })).rejects.toThrow('abort');
    // A committed write after it is published; the rolled-back one never is.
    const kept = (await inject('POST', '/v1/work-orders', { title: 'Kept' }, {}, t)).json().data;
    await h.published(other.id);
    const streamed = await h.streamedEvents(other.id);
    expect(streamed.map((e) => [e.event, (e.data as { title: string }).title])).toEqual([['work_order.created', 'Kept']]);
    expect(streamed[0]!.data).toMatchObject({ id: kept.id });
    const rows = await h.events(other.id);
    expect(rows).toHaveLength(1);
  });
});
