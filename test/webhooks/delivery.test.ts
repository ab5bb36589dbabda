import { randomUUID } from 'node:crypto';
import { register } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServicePool, withTenant, type Pool } from '../../services/shared/db.js';
import { EVENT_TYPES, type EventType, type NewEvent } from '../../services/shared/contracts/events.js';
import { insertEvents } from '../../services/shared/outbox.js';
import type { Platform } from '../../services/start.js';
import { bearer, buildTestApi, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { startRoles } from '../support/platform.js';
import { waitFor } from '../support/wait.js';
import { startReceiver, verifySignature, type Answer, type Receiver } from './receiver.js';

let db: TestDatabase;
let api: TestApi;
let roles: Platform;
let worker: Pool;
let org: TestOrg;
let token: string;
let receiver: Receiver;
const answers = new Map<string, (n: number, body: string) => Answer>();

const CONTRACT_TYPES = EVENT_TYPES.filter((t) => t !== 'webhook.disabled');

beforeAll(async () => {
  receiver = await startReceiver((path, n, body) => answers.get(path)?.(n, body) ?? { status: 200, body: 'ok' });
  db = await createTestDatabase({
    WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
    WEBHOOK_RETRY_DELAYS_MS: '40,40,40',
    WEBHOOK_TIMEOUT_MS: '3000',
    WEBHOOK_ENDPOINT_CONCURRENCY: '4',
    WEBHOOK_DISABLE_AFTER_MS: '0',
    WEBHOOK_POLL_MS: '200',
  });
  api = await buildTestApi(db.config);
  roles = await startRoles(db.config, ['webhooks']);
  worker = createServicePool(db.config, 'worker', 2);
  org = await createOrg(db.owner, 'unlimited');
  token = await login(api, org);
}, 60_000);

afterAll(async () => {
  await roles?.close();
  await receiver?.close();
  await worker?.end();
  await api?.close();
  await db?.drop();
});

const inject = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) =>
  api.sut.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });

async function createWebhook(path: string, events: readonly string[]) {
  const res = await inject('POST', '/v1/webhooks', { url: receiver.url(path), events });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data as { id: string; secret: string };
}

async function deliveriesOf(webhookId: string) {
  const res = await inject('GET', `/v1/webhooks/${webhookId}/deliveries?limit=100`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json().data as { id: string; event: string; event_id: string; status: string; attempt_count: number;
    attempts: { attempt: number; status_code: number | null; error: string | null; response_excerpt: string | null; duration_ms: number }[] }[];
}

/** Writes events through the one outbox insert every producer uses, as the worker role writes them. */
function event(type: EventType, fields: { assetId?: string; data?: Record<string, unknown> } = {}): NewEvent {
  const assetId = fields.assetId ?? randomUUID();
  const data = fields.data ?? (type.startsWith('asset.')
    ? { asset_id: assetId, device_id: randomUUID(), geofence_id: randomUUID(), geofence_name: 'Depot', geofence_kind: 'site', lat: 45.76, lon: 4.83, ts: new Date().toISOString(), accuracy_m: 5, speed_mps: 3 }
    : type.startsWith('employee.')
      ? { employee_id: randomUUID(), employee_ref: 'B-1', unknown_employee: false, device_id: randomUUID(), kind: type.endsWith('in') ? 'in' : 'out', gps_verified: true, site_id: null, distance_m: 0, lat: 45.7, lon: 4.8, accuracy_m: 4, ts: new Date().toISOString(), punch_id: '1' }
      : { id: randomUUID(), title: 'Boiler service' });
  return { tenantId: org.id, type, occurredAt: new Date().toISOString(), data, idempotencyKey: randomUUID(), assetId: type.startsWith('asset.') ? assetId : null } as NewEvent;
}

describe('webhook delivery', () => {
  it('delivers every event type once, as the signed envelope, with its headers', async () => {
    const hook = await createWebhook('/all', CONTRACT_TYPES);
    const events = CONTRACT_TYPES.map((type) => event(type));
    await insertEvents(worker, events);
    // And one from a real producer: the API writing a work order and its event in one transaction.
    const created = await inject('POST', '/v1/work-orders', { title: 'Replace the pump' });
    expect(created.statusCode, created.body).toBe(201);

    await waitFor(() => receiver.at('/all').length >= CONTRACT_TYPES.length + 1, 'every event type at the receiver');
    await new Promise((resolve) => setTimeout(resolve, 300)); // nothing more may come
    const got = receiver.at('/all');
    expect(got).toHaveLength(CONTRACT_TYPES.length + 1);
    const types = got.map((r) => JSON.parse(r.body).event as string).sort();
    expect(types).toEqual([...CONTRACT_TYPES, 'work_order.created'].sort());
    expect(new Set(got.map((r) => r.headers['x-fieldops-delivery'])).size).toBe(got.length);
    for (const request of got) {
      expect(verifySignature(request.headers['x-fieldops-signature'], request.body, hook.secret), request.body).toBe(true);
      expect(verifySignature(request.headers['x-fieldops-signature'], request.body, `${hook.secret}x`)).toBe(false);
      const envelope = JSON.parse(request.body);
      expect(Object.keys(envelope)).toEqual(['id', 'event', 'tenant_id', 'occurred_at', 'data']);
      expect(envelope.tenant_id).toBe(org.id);
      expect(request.headers['x-fieldops-event']).toBe(envelope.event);
      expect(request.headers['content-type']).toBe('application/json');
    }
    const wo = got.map((r) => JSON.parse(r.body)).find((e) => e.event === 'work_order.created' && e.data.title === 'Replace the pump');
    expect(wo.data.id).toBe(created.json().data.id);

    const log = await deliveriesOf(hook.id);
    expect(log).toHaveLength(CONTRACT_TYPES.length + 1);
    // The role counts them on the process's /metrics, without tenant or endpoint labels.
    const exposition = await register.getSingleMetricAsString('fieldops_webhook_attempts_total');
    expect(Number(/outcome="delivered"} (\d+)/.exec(exposition)?.[1])).toBeGreaterThanOrEqual(CONTRACT_TYPES.length + 1);
    expect(exposition).not.toContain(org.id);
    for (const delivery of log) {
      expect(delivery).toMatchObject({ status: 'delivered', attempt_count: 1 });
      expect(delivery.attempts[0]).toMatchObject({ attempt: 1, status_code: 200, response_excerpt: 'ok', error: null });
    }
  });

  it('retries a receiver that fails twice; the third attempt delivers, with the same delivery id each time', async () => {
    answers.set('/flaky', (n) => (n <= 2 ? { status: 503, body: 'busy' } : { status: 200 }));
    const hook = await createWebhook('/flaky', ['work_order.started']);
    await insertEvents(worker, [event('work_order.started')]);
    await waitFor(async () => (await deliveriesOf(hook.id))[0]?.status === 'delivered', 'the delivery, on its third attempt');
    const [delivery] = await deliveriesOf(hook.id);
    expect(delivery!.attempts.map((a) => a.status_code)).toEqual([503, 503, 200]);
    expect(delivery!.attempts[0]!.response_excerpt).toBe('busy');
    const got = receiver.at('/flaky');
    expect(got).toHaveLength(3);
    expect(new Set(got.map((r) => r.headers['x-fieldops-delivery']))).toEqual(new Set([delivery!.id]));
    for (const r of got) expect(verifySignature(r.headers['x-fieldops-signature'], r.body, hook.secret)).toBe(true);
  });

  it('fails a 4xx at once, retries a 429 only after its Retry-After, and redelivers on request', async () => {
    answers.set('/gone', () => ({ status: 410 }));
    answers.set('/slow-down', (n) => (n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
    const gone = await createWebhook('/gone', ['quote.sent']);
    const limited = await createWebhook('/slow-down', ['quote.sent']);
    await insertEvents(worker, [event('quote.sent')]);
    await waitFor(async () => (await deliveriesOf(gone.id))[0]?.status === 'failed', 'the 410 delivery failed');
    expect((await deliveriesOf(gone.id))[0]!.attempts.map((a) => a.status_code)).toEqual([410]);
    await waitFor(async () => (await deliveriesOf(limited.id))[0]?.status === 'delivered', 'the 429 delivery after Retry-After', );
    const [first, second] = receiver.at('/slow-down');
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);

    answers.set('/gone', () => ({ status: 200 }));
    // The failed endpoint was disabled (WEBHOOK_DISABLE_AFTER_MS=0 here); turn it on again, then redeliver.
    expect((await inject('PATCH', `/v1/webhooks/${gone.id}`, { enabled: true })).statusCode).toBe(200);
    const failed = (await deliveriesOf(gone.id))[0]!;
    const again = await inject('POST', `/v1/webhook-deliveries/${failed.id}/redeliver`);
    expect(again.statusCode, again.body).toBe(202);
    await waitFor(async () => (await deliveriesOf(gone.id))[0]?.status === 'delivered', 'the redelivery');
    const redelivered = (await deliveriesOf(gone.id))[0]!;
    expect(redelivered.id).toBe(failed.id);
    expect(redelivered.attempts.map((a) => a.status_code)).toEqual([410, 200]);
    expect(receiver.at('/gone').map((r) => r.headers['x-fieldops-delivery'])).toEqual([failed.id, failed.id]);
  });

  it('follows no redirect: a 3xx is retried at the same URL, its target never reached', async () => {
    answers.set('/moved', (n) => (n === 1 ? { status: 302, headers: { location: receiver.url('/elsewhere') } } : { status: 200 }));
    const hook = await createWebhook('/moved', ['quote.created']);
    await insertEvents(worker, [event('quote.created')]);
    await waitFor(async () => (await deliveriesOf(hook.id))[0]?.status === 'delivered', 'the delivery after the redirect');
    expect((await deliveriesOf(hook.id))[0]!.attempts.map((a) => a.status_code)).toEqual([302, 200]);
    expect(receiver.at('/elsewhere')).toHaveLength(0);
  });

  it('does not let a hanging endpoint delay another one', async () => {
    answers.set('/hang', () => 'hang');
    await createWebhook('/hang', ['inspection.submitted']);
    await createWebhook('/quick', ['inspection.submitted']);
    const started = Date.now();
    await insertEvents(worker, Array.from({ length: 30 }, () => event('inspection.submitted')));
    await waitFor(() => receiver.at('/quick').length >= 30, 'all 30 at the quick endpoint');
    // Well inside one attempt timeout (3 s) of the hanging endpoint, which holds its 4 slots only.
    expect(Date.now() - started).toBeLessThan(2000);
    expect(receiver.at('/hang').length).toBeLessThanOrEqual(4);
  });

  it('keeps the order of one asset\'s events per endpoint, through failures and uneven answer times', async () => {
    const assetId = randomUUID();
    answers.set('/ordered', (n) => (n % 4 === 2 ? { status: 500 } : { status: 200, delayMs: (n * 7) % 25 }));
    await createWebhook('/ordered', ['asset.geofence_entered', 'asset.geofence_exited']);
    const events = Array.from({ length: 12 }, (_, i) => event(i % 2 ? 'asset.geofence_exited' : 'asset.geofence_entered', { assetId }));
    await insertEvents(worker, events);
    const { rows } = await worker.query<{ id: string }>(
      `select id::text from events where tenant_id = $1 and asset_id = $2 order by id`, [org.id, assetId]);
    await waitFor(() => new Set(receiver.at('/ordered').map((r) => JSON.parse(r.body).id)).size >= 12, 'the 12 events');
    // Answered with a 2xx, in order: a failed attempt is retried before the next event goes out.
    let n = 0;
    const delivered = receiver.at('/ordered').filter(() => (++n % 4) !== 2).map((r) => JSON.parse(r.body).id as string);
    expect(delivered).toEqual(rows.map((r) => r.id));
  });

  it('sends a delivery left queued behind nothing (a routing race) after a short while', async () => {
    const hook = await createWebhook('/stranded', ['work_order.created']);
    // What a race leaves: a queued delivery whose predecessor finished in a transaction it could not see.
    await withTenant(db.owner, org.id, (tx) => tx.query(
      `insert into webhook_deliveries (tenant_id, webhook_id, event_type, occurred_at, data, ordering_key, status)
       values ($1, $2, 'ping', now(), '{}', 'work_order:stranded', 'queued')`, [org.id, hook.id]));
    await waitFor(() => receiver.at('/stranded').length === 1, { what: 'the stranded delivery', timeoutMs: 20_000 });
    // The outcome is written just after the answer (in a batch), so the log shows it moments later.
    await waitFor(async () => (await deliveriesOf(hook.id))[0]?.status === 'delivered', 'the delivery recorded as delivered');
    expect(receiver.at('/stranded')).toHaveLength(1);
    expect((await deliveriesOf(hook.id))[0]).toMatchObject({ status: 'delivered', attempt_count: 1 });
  });

  it('signs with both secrets during a rotation\'s overlap, with the new one only after it', async () => {
    const hook = await createWebhook('/rotating', ['work_order.completed']);
    const rotated = (await inject('POST', `/v1/webhooks/${hook.id}/rotate-secret?overlap_s=3600`)).json().data as { secret: string };
    expect((await inject('POST', `/v1/webhooks/${hook.id}/test`)).statusCode).toBe(202);
    await waitFor(() => receiver.at('/rotating').length >= 1, 'the ping');
    const ping = receiver.at('/rotating')[0]!;
    expect(JSON.parse(ping.body)).toMatchObject({ event: 'ping', tenant_id: org.id, data: { webhook_id: hook.id } });
    expect(ping.headers['x-fieldops-event']).toBe('ping');
    const header = ping.headers['x-fieldops-signature'] as string;
    expect(header.match(/v1=/g)).toHaveLength(2);
    expect(verifySignature(header, ping.body, rotated.secret)).toBe(true);
    expect(verifySignature(header, ping.body, hook.secret)).toBe(true);

    const final = (await inject('POST', `/v1/webhooks/${hook.id}/rotate-secret?overlap_s=0`)).json().data as { secret: string };
    await insertEvents(worker, [event('work_order.completed')]);
    await waitFor(() => receiver.at('/rotating').length >= 2, 'the event after the second rotation');
    const after = receiver.at('/rotating')[1]!;
    const afterHeader = after.headers['x-fieldops-signature'] as string;
    expect(afterHeader.match(/v1=/g)).toHaveLength(1);
    expect(verifySignature(afterHeader, after.body, final.secret)).toBe(true);
    expect(verifySignature(afterHeader, after.body, rotated.secret)).toBe(false);
  });

  it('disables an endpoint that keeps failing and tells the tenant with a webhook.disabled event', async () => {
    answers.set('/dead', () => ({ status: 500 }));
    const dead = await createWebhook('/dead', ['quote.accepted']);
    const watcher = await createWebhook('/watcher', ['webhook.disabled']);
    await insertEvents(worker, [event('quote.accepted')]);
    await waitFor(async () => (await deliveriesOf(dead.id))[0]?.status === 'failed', 'the delivery given up after its retries');
    expect((await deliveriesOf(dead.id))[0]!.attempts.map((a) => a.status_code)).toEqual([500, 500, 500, 500]);
    // Disabled right after the outcome is recorded (a statement of its own).
    const endpoint = await waitFor(async () => {
      const current = (await inject('GET', `/v1/webhooks/${dead.id}`)).json().data;
      return current.enabled === false && current;
    }, 'the endpoint disabled');
    expect(endpoint.disabled_reason).toMatch(/no successful delivery since/);
    // (Other endpoints of this file that failed for good were disabled too: pick this one's notice.)
    const notice = await waitFor(() => receiver.at('/watcher').find((r) => JSON.parse(r.body).data.webhook_id === dead.id),
      'the webhook.disabled event at another endpoint');
    expect(JSON.parse(notice.body)).toMatchObject({ event: 'webhook.disabled', tenant_id: org.id, data: { webhook_id: dead.id, url: receiver.url('/dead') } });
    expect(verifySignature(notice.headers['x-fieldops-signature'], notice.body, watcher.secret)).toBe(true);
    // A disabled endpoint gets nothing more.
    await insertEvents(worker, [event('quote.accepted')]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(receiver.at('/dead')).toHaveLength(4);
  });
});
