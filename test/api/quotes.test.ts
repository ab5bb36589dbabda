import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServicePool } from '../../services/shared/db.js';
import { expireDueQuotes } from '../../services/jobs/quote-expiry.js';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createOrg, type TestOrg } from '../support/factories.js';
import { dataUrl, jpegBytes, pngBytes } from '../support/images.js';

let db: TestDatabase;
let api: TestApi;
let org: TestOrg;
let token: string;

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config);
  org = await createOrg(db.owner, 'unlimited');
  token = await login(api, org);
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
const inject = (method: Method, url: string, payload?: object, headers: Record<string, string> = {}, as = token) =>
  api.sut.inject({ method, url, headers: { ...bearer(as), ...headers }, ...(payload ? { payload } : {}) });

const line = (fields: Partial<{ kind: string; description: string; quantity: number; unit_price: number; tax_rate: number }> = {}) =>
  ({ kind: 'part', description: 'Hydraulic filter', quantity: 1, unit_price: 1000, tax_rate: 20, ...fields });

async function createClient(tenantId = org.id, email: string | null = 'buyer@client.example'): Promise<string> {
  return asTenant(db.owner, tenantId, async (c) =>
    (await c.query<{ id: string }>('insert into clients (tenant_id, name, email) values ($1, $2, $3) returning id', [tenantId, 'Acme Quarry', email])).rows[0]!.id);
}

async function createQuote(body: object = { items: [line()] }) {
  const res = await inject('POST', '/v1/quotes', body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data;
}

const signature = dataUrl(pngBytes(64));
const sentQuote = async (body?: object) => {
  const quote = await createQuote(body);
  const sent = await inject('POST', `/v1/quotes/${quote.id}/send`);
  expect(sent.statusCode, sent.body).toBe(200);
  return sent.json().data;
};

describe('quote totals', () => {
  it('are computed by the server in integer minor units, rounded half-up per line', async () => {
    const quote = await createQuote({
      items: [
        // 1.005 × 100 = 100.5 → 101 (a float would make it 100.49999…); tax 7.125% of 101 = 7.19625 → 7
        line({ kind: 'labour', description: 'Diagnosis', quantity: 1.005, unit_price: 100, tax_rate: 7.125 }),
        // 0.333 × 100 = 33.3 → 33; 8.875% of 33 = 2.92875 → 3
        line({ quantity: 0.333, unit_price: 100, tax_rate: 8.875 }),
        // a tie: 2.5 × 1 = 2.5 → 3; 50% of 3 = 1.5 → 2
        line({ quantity: 2.5, unit_price: 1, tax_rate: 50 }),
        // 19.999% of 1,999 = 399.78001 → 400
        line({ quantity: 1, unit_price: 1999, tax_rate: 19.999 }),
        line({ quantity: 3, unit_price: 0, tax_rate: 0 }),
      ],
    });
    expect(quote.items.map((i: { subtotal: number; tax: number; total: number }) => [i.subtotal, i.tax, i.total])).toEqual([
      [101, 7, 108], [33, 3, 36], [3, 2, 5], [1999, 400, 2399], [0, 0, 0],
    ]);
    expect(quote).toMatchObject({ subtotal: 2136, tax_total: 412, total: 2548, stage: 'draft', revision: 1, currency: 'USD' });
    expect(quote.items[0]).toMatchObject({ quantity: 1.005, unit_price: 100, tax_rate: 7.125 });
  });

  it('stay exact for large values, and refuse a total past the exact integer range', async () => {
    const big = await createQuote({ items: [line({ quantity: 999_999.999, unit_price: 9_000_000_000, tax_rate: 0.001 })] });
    // 999999.999 × 9e9 = 8,999,999,991,000,000 exactly; 0.001% of it = 89,999,999,910
    expect(big).toMatchObject({ subtotal: 8_999_999_991_000_000, tax_total: 89_999_999_910, total: 9_000_089_990_999_910 });
    const { rows } = await db.owner.query<{ total: string }>('select total::text from quotes where id = $1', [big.id]);
    expect(rows[0]!.total).toBe('9000089990999910');

    const tooBig = await inject('POST', '/v1/quotes', { items: [line({ quantity: 1_000_000, unit_price: 10_000_000_000_000 })] });
    expect(tooBig.statusCode).toBe(400);
    expect(errorOf(tooBig).issues).toEqual([{ path: 'items', message: expect.stringContaining('at most') }]);
  });

  it('refuses lines it cannot compute exactly, naming them', async () => {
    const res = await inject('POST', '/v1/quotes', { items: [line(), line({ quantity: 1.0001, tax_rate: 7.1234 })] });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).issues).toEqual([
      { path: 'items.1.quantity', message: 'must have at most 3 decimals' },
      { path: 'items.1.tax_rate', message: 'must have at most 3 decimals' },
    ]);
    for (const bad of [
      { items: [] },
      { items: [line({ quantity: 0 })] },
      { items: [line({ quantity: -1 })] },
      { items: [line({ unit_price: 10.5 })] },
      { items: [line({ tax_rate: 101 })] },
      { items: [line({ kind: 'discount' })] },
      { items: [line()], currency: 'euro' },
      { items: [line()], stage: 'accepted' },
      { items: [line({ unit_price: '100' as unknown as number })] },
      // Text PostgreSQL cannot store is refused as input, not a server error.
      { items: [line({ description: 'Filter\u0000' })] },
      { items: [line()], title: 'a\u0000b' },
      { items: [line()], valid_until: '2026-02-30' },
    ]) {
      const refused = await inject('POST', '/v1/quotes', bad);
      expect(refused.statusCode, JSON.stringify(bad)).toBe(400);
      expect(errorOf(refused).code).toBe('bad_request');
    }
  });
});

describe('the quote pipeline', () => {
  it('draft → sent → viewed → accepted, with the signature kept and readable', async () => {
    const clientId = await createClient();
    const quote = await createQuote({ client_id: clientId, title: 'Pump overhaul', items: [line()] });
    expect(quote).toMatchObject({ stage: 'draft', client_id: clientId, number: expect.any(Number), version: 1, acceptance: null });

    const sent = await inject('POST', `/v1/quotes/${quote.id}/send`, { message: 'As discussed on site.' });
    expect(sent.json().data).toMatchObject({ stage: 'sent', sent_to: 'buyer@client.example', sent_at: expect.any(String), version: 2 });
    expect(sent.headers.etag).toBe('"2"');
    // The email went through the default transport: queued in the outbox with the quote's lines and total.
    const mail = await asTenant(db.owner, org.id, async (c) =>
      (await c.query('select to_address, subject, body from mail_outbox where related_id = $1', [quote.id])).rows);
    expect(mail).toEqual([{ to_address: 'buyer@client.example', subject: expect.stringContaining(`Quote ${quote.number}`), body: expect.stringContaining('USD 12.00') }]);
    expect(mail[0].body).toContain('As discussed on site.');

    const viewed = await inject('POST', `/v1/quotes/${quote.id}/view`);
    expect(viewed.json().data).toMatchObject({ stage: 'viewed', viewed_at: expect.any(String) });

    const image = jpegBytes(4096);
    const accepted = await inject('POST', `/v1/quotes/${quote.id}/accept`, { signed_by: 'Dana Client', signature: dataUrl(image, 'image/jpeg') }, { 'x-forwarded-for': '203.0.113.9' });
    expect(accepted.statusCode, accepted.body).toBe(200);
    expect(accepted.json().data).toMatchObject({
      stage: 'accepted', accepted_at: expect.any(String),
      acceptance: { signed_by: 'Dana Client', signed_at: expect.any(String), ip: '127.0.0.1', signature: { content_type: 'image/jpeg', size: image.length } },
    });
    const stored = await inject('GET', `/v1/quotes/${quote.id}/signature`);
    expect(stored.statusCode).toBe(200);
    expect(stored.headers['content-type']).toBe('image/jpeg');
    expect(stored.rawPayload.equals(image)).toBe(true);

    const history = (await inject('GET', `/v1/quotes/${quote.id}/history?sort=version`)).json().data;
    expect(history.map((h: { action: string }) => h.action)).toEqual(['create', 'send', 'view', 'accept']);
    expect(history[1].changes.stage).toEqual({ from: 'draft', to: 'sent' });
  });

  it('illegal moves are 409 conflict and change nothing', async () => {
    const draft = await createQuote();
    for (const action of ['view', 'accept', 'reject', 'convert']) {
      const res = await inject('POST', `/v1/quotes/${draft.id}/${action}`, action === 'accept' ? { signed_by: 'X', signature } : undefined);
      expect(res.statusCode, action).toBe(409);
      expect(errorOf(res)).toMatchObject({ code: 'conflict', issues: [{ path: 'stage' }] });
    }
    const sent = await sentQuote();
    expect((await inject('POST', `/v1/quotes/${sent.id}/send`)).statusCode).toBe(409);
    expect((await inject('PATCH', `/v1/quotes/${sent.id}`, { title: 'late edit' })).statusCode).toBe(409);
    expect((await inject('DELETE', `/v1/quotes/${sent.id}`)).statusCode).toBe(409);
    const rejected = await inject('POST', `/v1/quotes/${sent.id}/reject`, { reason: 'Too expensive' });
    expect(rejected.json().data).toMatchObject({ stage: 'rejected', rejection_reason: 'Too expensive' });
    expect((await inject('POST', `/v1/quotes/${sent.id}/accept`, { signed_by: 'X', signature })).statusCode).toBe(409);
    expect((await inject('GET', `/v1/quotes/${sent.id}`)).json().data).toMatchObject({ stage: 'rejected', version: 3, acceptance: null });
  });

  it('a signature must be a PNG or JPEG image by its bytes', async () => {
    const quote = await sentQuote();
    const notImage = await inject('POST', `/v1/quotes/${quote.id}/accept`, { signed_by: 'X', signature: dataUrl(Buffer.from('GIF89a not allowed'), 'image/png') });
    expect(notImage.statusCode).toBe(400);
    expect(errorOf(notImage).issues).toEqual([{ path: 'signature', message: 'must be a PNG or JPEG image' }]);
    expect((await inject('POST', `/v1/quotes/${quote.id}/accept`, { signed_by: 'X', signature: 'hello' })).statusCode).toBe(400);
    expect((await inject('POST', `/v1/quotes/${quote.id}/accept`, { signature })).statusCode).toBe(400);
    expect((await inject('GET', `/v1/quotes/${quote.id}`)).json().data.stage).toBe('sent');
  });

  it('a draft is edited in place with its totals recomputed; a sent quote is amended as a new revision, the old one kept', async () => {
    const quote = await createQuote();
    const edited = await inject('PATCH', `/v1/quotes/${quote.id}`, { items: [line({ quantity: 2 })], valid_until: '2099-12-31' });
    expect(edited.json().data).toMatchObject({ total: 2400, version: 2, valid_until: '2100-01-01T00:00:00.000Z' });

    await inject('POST', `/v1/quotes/${quote.id}/send`, { to: 'someone@example.com' });
    await inject('POST', `/v1/quotes/${quote.id}/accept`, { signed_by: 'First Signer', signature });
    const amended = await inject('POST', `/v1/quotes/${quote.id}/revisions`, { items: [line({ quantity: 3 })], notes: 'Second pump added' });
    expect(amended.statusCode, amended.body).toBe(201);
    expect(amended.json().data).toMatchObject({
      id: quote.id, revision: 2, stage: 'draft', total: 3600, notes: 'Second pump added', acceptance: null, sent_at: null, accepted_at: null,
    });

    const revisions = (await inject('GET', `/v1/quotes/${quote.id}/revisions`)).json();
    expect(revisions.meta.total).toBe(1);
    expect(revisions.data[0]).toMatchObject({
      revision: 1,
      quote: { revision: 1, stage: 'accepted', total: 2400, acceptance: { signed_by: 'First Signer' } },
    });
    const first = await inject('GET', `/v1/quotes/${quote.id}/revisions/1`);
    expect(first.json().data).toMatchObject({ revision: 1, stage: 'accepted' });
    expect((await inject('GET', `/v1/quotes/${quote.id}/revisions/2`)).json().data).toMatchObject({ revision: 2, stage: 'draft' });
    expect((await inject('GET', `/v1/quotes/${quote.id}/revisions/3`)).statusCode).toBe(404);
    // The first revision's signature stays readable.
    expect((await inject('GET', `/v1/quotes/${quote.id}/signature?revision=1`)).statusCode).toBe(200);
    expect((await inject('GET', `/v1/quotes/${quote.id}/signature`)).statusCode).toBe(404);

    // The new revision goes through the pipeline again.
    await inject('POST', `/v1/quotes/${quote.id}/send`);
    const again = await inject('POST', `/v1/quotes/${quote.id}/accept`, { signed_by: 'Second Signer', signature });
    expect(again.json().data).toMatchObject({ revision: 2, stage: 'accepted', acceptance: { signed_by: 'Second Signer' } });
  });

  it('a draft can be deleted; a quote with a passed date cannot be sent', async () => {
    const quote = await createQuote({ items: [line()], valid_until: '2001-01-01T00:00:00Z' });
    const late = await inject('POST', `/v1/quotes/${quote.id}/send`);
    expect(late.statusCode).toBe(409);
    expect(errorOf(late).issues).toEqual([{ path: 'valid_until', message: 'has passed' }]);
    expect((await inject('DELETE', `/v1/quotes/${quote.id}`)).statusCode).toBe(204);
    expect((await inject('GET', `/v1/quotes/${quote.id}`)).statusCode).toBe(404);
  });
});

describe('conversion into a work order', () => {
  it('an accepted quote becomes a work order once, with its client and lines; the quote names it', async () => {
    const clientId = await createClient();
    const quote = await sentQuote({ client_id: clientId, title: 'Replace seals', notes: 'Bring the long ladder', items: [line({ quantity: 2 }), line({ kind: 'labour', description: 'Fitting', quantity: 1.5 })] });
    await inject('POST', `/v1/quotes/${quote.id}/accept`, { signed_by: 'Dana', signature });

    const converted = await inject('POST', `/v1/quotes/${quote.id}/convert`, { priority: 'high' });
    expect(converted.statusCode, converted.body).toBe(201);
    const order = converted.json().data;
    expect(order).toMatchObject({
      title: 'Replace seals', priority: 'high', status: 'draft', client_id: clientId, notes: 'Bring the long ladder',
      description: expect.stringContaining('1.5 × Fitting (labour)'),
    });
    expect((await inject('GET', `/v1/work-orders/${order.id}`)).statusCode).toBe(200);
    expect((await inject('GET', `/v1/quotes/${quote.id}`)).json().data).toMatchObject({ stage: 'accepted', work_order_id: order.id });
    expect((await inject('GET', `/v1/quotes?work_order_id=${order.id}`)).json().data.map((q: { id: string }) => q.id)).toEqual([quote.id]);

    const twice = await inject('POST', `/v1/quotes/${quote.id}/convert`);
    expect(twice.statusCode).toBe(409);
    expect(errorOf(twice).issues).toEqual([{ path: 'work_order_id', message: `is ${order.id}` }]);
  });

  it('needs work_orders.write besides quotes.write, and a valid site', async () => {
    const quote = await sentQuote();
    await inject('POST', `/v1/quotes/${quote.id}/accept`, { signed_by: 'Dana', signature });
    const key = (await inject('POST', '/v1/api-keys', { name: 'quotes only', scopes: ['quotes.read', 'quotes.write'] })).json().data.key;
    const denied = await inject('POST', `/v1/quotes/${quote.id}/convert`, undefined, {}, key);
    expect(denied.statusCode).toBe(403);
    const badSite = await inject('POST', `/v1/quotes/${quote.id}/convert`, { site_id: randomUUID() });
    expect(badSite.statusCode).toBe(400);
    expect(errorOf(badSite).issues).toEqual([{ path: 'site_id', message: 'no site with this id' }]);
    expect((await inject('GET', `/v1/quotes/${quote.id}`)).json().data.work_order_id).toBeNull();
  });
});

describe('expiry', () => {
  it('an open quote past its date reads and acts as expired at once; the job writes it down', async () => {
    const quote = await sentQuote({ items: [line()], valid_until: new Date(Date.now() + 3_600_000).toISOString() });
    await asTenant(db.owner, org.id, (c) => c.query(`update quotes set valid_until = now() - interval '1 minute' where id = $1`, [quote.id]));

    const read = (await inject('GET', `/v1/quotes/${quote.id}`)).json().data;
    expect(read).toMatchObject({ stage: 'expired', expired_at: expect.any(String) });
    const accept = await inject('POST', `/v1/quotes/${quote.id}/accept`, { signed_by: 'Too Late', signature });
    expect(accept.statusCode).toBe(409);
    expect(errorOf(accept).message).toContain('expired');
    expect((await inject('GET', `/v1/quotes?stage=expired`)).json().data.map((q: { id: string }) => q.id)).toContain(quote.id);
    expect((await inject('GET', `/v1/quotes?stage=sent`)).json().data.map((q: { id: string }) => q.id)).not.toContain(quote.id);

    // The job (worker role, every tenant) persists it; it may touch nothing but open quotes past their date.
    const fresh = await sentQuote({ items: [line()], valid_until: '2099-01-01' });
    const worker = createServicePool(db.config, 'worker', 1);
    try {
      expect(await expireDueQuotes(worker)).toBe(1);
      expect(await expireDueQuotes(worker)).toBe(0);
      await expect(worker.query('select items from quotes')).rejects.toThrow(/permission denied/);
    } finally {
      await worker.end();
    }
    const rows = await asTenant(db.owner, org.id, async (c) =>
      (await c.query<{ id: string; stage: string; version: number }>('select id, stage, version from quotes where id = any($1)', [[quote.id, fresh.id]])).rows);
    // Version 3 was the test's own change of the date; writing the expiry down is a change too.
    expect(Object.fromEntries(rows.map((r) => [r.id, [r.stage, r.version]]))).toEqual({ [quote.id]: ['expired', 4], [fresh.id]: ['sent', 2] });

    // An expired quote is offered again by amending it.
    const renewed = await inject('POST', `/v1/quotes/${quote.id}/revisions`, { valid_until: '2099-06-30' });
    expect(renewed.json().data).toMatchObject({ revision: 2, stage: 'draft', expired_at: null });
  });
});

describe('lists', () => {
  it('filter by stage, client and created time, sort, and page by offset or cursor', async () => {
    const other = await createOrg(db.owner, 'unlimited');
    const theirs = await login(api, other);
    const clientId = await createClient(other.id);
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await inject('POST', '/v1/quotes', { client_id: clientId, items: [line({ unit_price: 100 * (i + 1) })] }, {}, theirs);
      made.push(res.json().data.id);
    }
    await inject('POST', `/v1/quotes/${made[0]}/send`, undefined, {}, theirs);
    const list = (query: string) => inject('GET', `/v1/quotes${query}`, undefined, {}, theirs).then((r) => r.json());

    expect((await list('')).meta).toMatchObject({ total: 5, limit: 50, offset: 0 });
    expect((await list('?stage=sent')).data.map((q: { id: string }) => q.id)).toEqual([made[0]]);
    expect((await list(`?client_id=${clientId}&stage=draft`)).meta.total).toBe(4);
    expect((await list('?sort=total')).data.map((q: { total: number }) => q.total)).toEqual([120, 240, 360, 480, 600]);
    expect((await list('?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z')).meta.total).toBe(0);
    expect((await list(`?from=${new Date(Date.now() - 60_000).toISOString()}`)).meta.total).toBe(5);
    const page1 = await list('?sort=number&limit=2');
    const page2 = await list(`?limit=2&cursor=${page1.meta.next_cursor}`);
    const page3 = await list('?sort=number&limit=2&offset=4');
    expect([...page1.data, ...page2.data, ...page3.data].map((q: { number: number }) => q.number)).toEqual([1, 2, 3, 4, 5]);
    expect(page3.meta.next_cursor).toBeNull();
    expect((await list('?stage=won')).data).toBeUndefined();
    expect((await inject('GET', '/v1/quotes?stage=won', undefined, {}, theirs)).statusCode).toBe(400);
  });
});

describe('tenancy, scopes and write conventions', () => {
  it('another tenant\'s quote is 404 everywhere, and a client of another tenant is refused', async () => {
    const quote = await sentQuote();
    const other = await createOrg(db.owner, 'unlimited');
    const theirs = await login(api, other);
    for (const [method, url, body] of [
      ['GET', `/v1/quotes/${quote.id}`], ['PATCH', `/v1/quotes/${quote.id}`, { title: 'x' }], ['POST', `/v1/quotes/${quote.id}/view`],
      ['POST', `/v1/quotes/${quote.id}/accept`, { signed_by: 'X', signature }], ['POST', `/v1/quotes/${quote.id}/revisions`, {}],
      ['GET', `/v1/quotes/${quote.id}/revisions`], ['GET', `/v1/quotes/${quote.id}/signature`], ['DELETE', `/v1/quotes/${quote.id}`],
    ] as [Method, string, object?][]) {
      expect((await inject(method, url, body, {}, theirs)).statusCode, `${method} ${url}`).toBe(404);
    }
    expect((await inject('GET', '/v1/quotes', undefined, {}, theirs)).json().meta.total).toBe(0);
    const foreignClient = await createClient(other.id);
    const res = await inject('POST', '/v1/quotes', { client_id: foreignClient, items: [line()] });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).issues).toEqual([{ path: 'client_id', message: 'no client with this id' }]);
  });

  it('needs quotes.read to read and quotes.write to change', async () => {
    const quote = await createQuote();
    const asRole = async (role: string) => {
      const email = `${role}-${randomUUID()}@example.com`;
      await inject('POST', '/v1/users', { email, password: 'long enough pw', role });
      return login(api, org, email, 'long enough pw');
    };
    const viewer = await asRole('viewer');
    expect((await inject('GET', `/v1/quotes/${quote.id}`, undefined, {}, viewer)).statusCode).toBe(200);
    const denied = await inject('POST', `/v1/quotes/${quote.id}/send`, undefined, {}, viewer);
    expect(denied.statusCode).toBe(403);
    expect(errorOf(denied).code).toBe('forbidden');
    expect((await inject('POST', '/v1/quotes', { items: [line()] }, {}, viewer)).statusCode).toBe(403);
    const technician = await asRole('technician');
    expect((await inject('GET', '/v1/quotes', undefined, {}, technician)).statusCode).toBe(403);
  });

  it('If-Match guards edits and actions; Idempotency-Key replays creates and actions', async () => {
    const quote = await createQuote();
    const stale = await inject('PATCH', `/v1/quotes/${quote.id}`, { title: 'A' }, { 'if-match': '"7"' });
    expect(stale.statusCode).toBe(409);
    expect(errorOf(stale).issues).toEqual([{ path: 'If-Match', message: 'the current ETag is "1"' }]);
    expect((await inject('POST', `/v1/quotes/${quote.id}/send`, undefined, { 'if-match': '"7"' })).statusCode).toBe(409);
    expect((await inject('POST', `/v1/quotes/${quote.id}/send`, undefined, { 'if-match': '"1"' })).statusCode).toBe(200);

    const key = randomUUID();
    const first = await inject('POST', '/v1/quotes', { items: [line()], title: 'Once' }, { 'idempotency-key': key });
    const again = await inject('POST', '/v1/quotes', { items: [line()], title: 'Once' }, { 'idempotency-key': key });
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toBe(first.body);
    const count = await asTenant(db.owner, org.id, async (c) =>
      Number((await c.query(`select count(*) from quotes where tenant_id = $1 and title = 'Once'`, [org.id])).rows[0].count));
    expect(count).toBe(1);

    const sent = await sentQuote();
    const acceptKey = randomUUID();
    const accepted = await inject('POST', `/v1/quotes/${sent.id}/accept`, { signed_by: 'A', signature }, { 'idempotency-key': acceptKey });
    const replay = await inject('POST', `/v1/quotes/${sent.id}/accept`, { signed_by: 'A', signature }, { 'idempotency-key': acceptKey });
    expect(replay.statusCode).toBe(200);
    expect(replay.body).toBe(accepted.body);
  });

  it('is documented in the OpenAPI document', async () => {
    const doc = (await api.sut.inject({ method: 'GET', url: '/v1/openapi.json' })).json();
    for (const path of ['/v1/quotes', '/v1/quotes/{id}', '/v1/quotes/{id}/send', '/v1/quotes/{id}/accept', '/v1/quotes/{id}/reject',
      '/v1/quotes/{id}/revisions', '/v1/quotes/{id}/convert']) {
      expect(doc.paths[path], path).toBeDefined();
    }
  });
});
