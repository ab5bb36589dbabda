import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Resolver } from '../../services/shared/webhook-targets.js';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';

let db: TestDatabase;
let api: TestApi;
let org: TestOrg;
let other: TestOrg;
let token: string;
let otherToken: string;

/** Names the test controls: one pointing inside, one outside, one that does not exist (yet). */
const resolver: Resolver = async (host) => {
  if (host === 'inside.example.test') return [{ address: '10.1.2.3', family: 4 }];
  if (host === 'mixed.example.test') return [{ address: '93.184.216.34', family: 4 }, { address: '192.168.7.7', family: 4 }];
  if (host === 'hooks.example.test') return [{ address: '93.184.216.34', family: 4 }];
  throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
};

beforeAll(async () => {
  db = await createTestDatabase({ WEBHOOK_ALLOW_HOSTS: '127.0.0.1' });
  api = await buildTestApi(db.config, { webhookResolver: resolver });
  org = await createOrg(db.owner, 'unlimited');
  other = await createOrg(db.owner, 'unlimited');
  token = await login(api, org);
  otherToken = await login(api, other);
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

const inject = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, as: string, payload?: object, headers: Record<string, string> = {}) =>
  api.sut.inject({ method, url, headers: { ...bearer(as), ...headers }, ...(payload ? { payload } : {}) });

async function createWebhook(body: object = { url: 'https://hooks.example.test/in', events: ['*'] }, as = token) {
  const res = await inject('POST', '/v1/webhooks', as, body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data as { id: string; secret: string; url: string; events: string[]; enabled: boolean; version: number };
}

describe('/v1/webhooks', () => {
  it('creates an endpoint whose secret is shown once and stored sealed, lists, patches and deletes it', async () => {
    const created = await createWebhook({ url: 'https://hooks.example.test/in', events: ['work_order.created', 'asset.geofence_entered'], description: 'ERP' });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(created).toMatchObject({ enabled: true, events: ['work_order.created', 'asset.geofence_entered'], version: 1 });

    const one = await inject('GET', `/v1/webhooks/${created.id}`, token);
    expect(one.statusCode).toBe(200);
    expect(one.json().data).not.toHaveProperty('secret');
    const list = await inject('GET', '/v1/webhooks', token);
    expect(list.json().data.map((w: { id: string }) => w.id)).toContain(created.id);
    expect(list.body).not.toContain(created.secret);

    // Stored sealed: neither the secret nor its random part appears in the row's bytes.
    const sealed = await db.owner.connect();
    try {
      await sealed.query('begin');
      await sealed.query(`select set_config('app.tenant_id', $1, true)`, [org.id]);
      const stored = (await sealed.query<{ secret_sealed: Buffer }>('select secret_sealed from webhooks where id = $1', [created.id])).rows[0]!;
      expect(stored.secret_sealed.length).toBeGreaterThan(28);
      expect(stored.secret_sealed.includes(Buffer.from(created.secret))).toBe(false);
      expect(stored.secret_sealed.includes(Buffer.from(created.secret.slice(6)))).toBe(false);
      await sealed.query('rollback');
    } finally {
      sealed.release();
    }

    const patched = await inject('PATCH', `/v1/webhooks/${created.id}`, token, { enabled: false }, { 'if-match': '"1"' });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json().data).toMatchObject({ enabled: false, version: 2, disabled_reason: 'disabled through the API' });
    expect(Date.parse(patched.json().data.disabled_at)).toBeGreaterThan(Date.now() - 60_000);
    const stale = await inject('PATCH', `/v1/webhooks/${created.id}`, token, { enabled: true }, { 'if-match': '"1"' });
    expect(stale.statusCode).toBe(409);

    expect((await inject('DELETE', `/v1/webhooks/${created.id}`, token)).statusCode).toBe(204);
    expect((await inject('GET', `/v1/webhooks/${created.id}`, token)).statusCode).toBe(404);
  });

  it('refuses URLs that are not http(s) or that point at private, loopback or link-local addresses, with 400 naming url', async () => {
    const refused = [
      'ftp://hooks.example.test/in', 'file:///etc/passwd', 'not a url', 'https://user:pw@hooks.example.test/',
      'http://10.0.0.5/hook', 'http://192.168.1.1/', 'http://172.16.0.1/', 'http://169.254.169.254/latest/meta-data',
      'http://[::1]:8080/', 'http://[fe80::1]/', 'http://[::ffff:10.0.0.1]/', 'http://127.0.0.2:9/', 'http://0.0.0.0/',
      'http://100.64.0.1/', 'https://inside.example.test/hook', 'https://mixed.example.test/hook',
    ];
    for (const url of refused) {
      const res = await inject('POST', '/v1/webhooks', token, { url, events: ['*'] });
      expect(res.statusCode, url).toBe(400);
      expect(errorOf(res).issues[0]?.path, url).toBe('url');
    }
    // Listed in WEBHOOK_ALLOW_HOSTS; a public name; a name that does not resolve yet (checked again at delivery).
    await createWebhook({ url: 'http://127.0.0.1:9/hook', events: ['*'] });
    await createWebhook({ url: 'https://hooks.example.test/x', events: ['*'] });
    await createWebhook({ url: 'https://not-yet.example.test/x', events: ['*'] });
    // A change of URL is checked the same way.
    const hook = await createWebhook();
    const moved = await inject('PATCH', `/v1/webhooks/${hook.id}`, token, { url: 'http://10.9.9.9/' });
    expect(moved.statusCode).toBe(400);
  });

  it('answers malformed input with 400, never 500', async () => {
    const hook = await createWebhook();
    const bodies = [
      { url: 'https://hooks.example.test/\u0000', events: ['*'] },
      { url: 'https://hooks.example.test/', events: ['*'], description: 'nul \u0000 inside' },
      { url: 'x'.repeat(3000), events: ['*'] },
      { url: 'https://hooks.example.test/', events: '*' },
      { url: 'https://hooks.example.test/', events: ['*'], colour: 'red' },
    ];
    for (const body of bodies) expect((await inject('POST', '/v1/webhooks', token, body)).statusCode, JSON.stringify(body).slice(0, 80)).toBe(400);
    expect((await inject('GET', `/v1/webhooks/${hook.id}/deliveries?event=%00`, token)).statusCode).toBe(400);
    expect((await inject('GET', `/v1/webhooks/${hook.id}/deliveries?cursor=nonsense`, token)).statusCode).toBe(400);
    expect((await inject('POST', `/v1/webhooks/${hook.id}/rotate-secret?overlap_s=-1`, token)).statusCode).toBe(400);
    expect((await inject('GET', '/v1/webhooks/not-a-uuid', token)).statusCode).toBe(404);
  });

  it('refuses unknown event types and empty lists', async () => {
    const res = await inject('POST', '/v1/webhooks', token, { url: 'https://hooks.example.test/', events: ['work_order.exploded'] });
    expect(res.statusCode).toBe(400);
    expect((await inject('POST', '/v1/webhooks', token, { url: 'https://hooks.example.test/', events: [] })).statusCode).toBe(400);
  });

  it('rotates the secret: a new one, shown once, with the previous one kept signing for the overlap', async () => {
    const hook = await createWebhook();
    const rotated = await inject('POST', `/v1/webhooks/${hook.id}/rotate-secret?overlap_s=600`, token);
    expect(rotated.statusCode, rotated.body).toBe(200);
    const data = rotated.json().data;
    expect(data.secret).toMatch(/^whsec_/);
    expect(data.secret).not.toBe(hook.secret);
    const overlapLeftMs = new Date(data.previous_secret_expires_at).getTime() - Date.now();
    expect(overlapLeftMs).toBeGreaterThan(590_000);
    expect(overlapLeftMs).toBeLessThanOrEqual(600_000);
    const noBody = await inject('POST', `/v1/webhooks/${hook.id}/rotate-secret`, token);
    expect(noBody.statusCode, noBody.body).toBe(200);
  });

  it('queues a ping, lists it in the delivery log, and refuses to redeliver it while pending', async () => {
    const hook = await createWebhook();
    const ping = await inject('POST', `/v1/webhooks/${hook.id}/test`, token);
    expect(ping.statusCode, ping.body).toBe(202);
    const delivery = ping.json().data;
    expect(delivery).toMatchObject({ webhook_id: hook.id, event: 'ping', status: 'pending', attempt_count: 0, attempts: [] });
    const log = await inject('GET', `/v1/webhooks/${hook.id}/deliveries`, token);
    expect(log.statusCode, log.body).toBe(200);
    expect(log.json().data.map((d: { id: string }) => d.id)).toEqual([delivery.id]);
    const again = await inject('POST', `/v1/webhook-deliveries/${delivery.id}/redeliver`, token);
    expect(again.statusCode).toBe(409);
  });

  it('keeps tenants apart: another tenant\'s endpoint and deliveries are 404, and row-level security hides them', async () => {
    const hook = await createWebhook();
    const ping = (await inject('POST', `/v1/webhooks/${hook.id}/test`, token)).json().data;
    expect((await inject('GET', `/v1/webhooks/${hook.id}`, otherToken)).statusCode).toBe(404);
    expect((await inject('PATCH', `/v1/webhooks/${hook.id}`, otherToken, { enabled: false })).statusCode).toBe(404);
    expect((await inject('POST', `/v1/webhooks/${hook.id}/rotate-secret`, otherToken)).statusCode).toBe(404);
    expect((await inject('POST', `/v1/webhooks/${hook.id}/test`, otherToken)).statusCode).toBe(404);
    expect((await inject('GET', `/v1/webhooks/${hook.id}/deliveries`, otherToken)).statusCode).toBe(404);
    expect((await inject('GET', `/v1/webhook-deliveries/${ping.id}`, otherToken)).statusCode).toBe(404);
    expect((await inject('POST', `/v1/webhook-deliveries/${ping.id}/redeliver`, otherToken)).statusCode).toBe(404);
    expect((await inject('DELETE', `/v1/webhooks/${hook.id}`, otherToken)).statusCode).toBe(404);
    expect((await inject('GET', '/v1/webhooks', otherToken)).json().data).toEqual([]);

    // The API's database role itself, with the other tenant set, sees none of the three tables' rows.
    const client = await api.pool.connect();
    try {
      await client.query('begin');
      await client.query(`select set_config('app.tenant_id', $1, true)`, [other.id]);
      for (const table of ['webhooks', 'webhook_deliveries', 'webhook_attempts']) {
        expect((await client.query(`select count(*)::int as n from ${table}`)).rows[0].n, table).toBe(0);
      }
      await client.query(`select set_config('app.tenant_id', $1, true)`, [org.id]);
      expect((await client.query('select count(*)::int as n from webhooks')).rows[0].n).toBeGreaterThan(0);
      await client.query('rollback');
    } finally {
      client.release();
    }
  });

  it('needs the unlimited plan or the api add-on (402), and the webhooks scopes (403)', async () => {
    const team = await createOrg(db.owner, 'team');
    const teamToken = await login(api, team);
    const res = await inject('GET', '/v1/webhooks', teamToken);
    expect(res.statusCode).toBe(402);
    expect(errorOf(res).code).toBe('payment_required');
    expect((await inject('POST', '/v1/webhooks', teamToken, { url: 'https://hooks.example.test/', events: ['*'] })).statusCode).toBe(402);

    const withAddon = await createOrg(db.owner, 'team', ['api']);
    await createWebhook(undefined, await login(api, withAddon));

    const key = await inject('POST', '/v1/api-keys', token, { name: 'read only', scopes: ['webhooks.read'] });
    const readOnly = key.json().data.key as string;
    expect((await inject('GET', '/v1/webhooks', readOnly)).statusCode).toBe(200);
    expect((await inject('POST', '/v1/webhooks', readOnly, { url: 'https://hooks.example.test/', events: ['*'] })).statusCode).toBe(403);
  });
});
