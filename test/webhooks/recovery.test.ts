import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServicePool, type Pool } from '../../services/shared/db.js';
import { createLogger } from '../../services/shared/log.js';
import { insertEvents } from '../../services/shared/outbox.js';
import type { Resolver } from '../../services/shared/webhook-targets.js';
import { DeliveryWorker } from '../../services/webhooks/delivery-worker.js';
import type { Platform } from '../../services/start.js';
import { bearer, buildTestApi, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { startRoles } from '../support/platform.js';
import { waitFor } from '../support/wait.js';
import { startReceiver, verifySignature, type Answer, type Receiver } from './receiver.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const entry = fileURLToPath(new URL('../support/cli-entry.ts', import.meta.url));

let db: TestDatabase;
let api: TestApi;
let worker: Pool;
let org: TestOrg;
let token: string;
let receiver: Receiver;
const answers = new Map<string, (n: number) => Answer>();

/** At create, these names resolve nowhere yet (accepted, to be checked at delivery). */
const nothingResolves: Resolver = async () => { throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' }); };

beforeAll(async () => {
  // On every loopback address, so that a delivery let through to 127.0.0.2 would be seen.
  receiver = await startReceiver((path, n) => answers.get(path)?.(n) ?? { status: 200 }, '0.0.0.0');
  db = await createTestDatabase({
    WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
    WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64url'),
    WEBHOOK_RETRY_DELAYS_MS: '50,50',
    WEBHOOK_TIMEOUT_MS: '1000',
    WEBHOOK_POLL_MS: '100',
  });
  api = await buildTestApi(db.config, { webhookResolver: nothingResolves });
  worker = createServicePool(db.config, 'worker', 2);
  org = await createOrg(db.owner, 'unlimited');
  token = await login(api, org);
}, 60_000);

afterAll(async () => {
  await receiver?.close();
  await worker?.end();
  await api?.close();
  await db?.drop();
});

async function createWebhook(url: string, events: string[]) {
  const res = await api.sut.inject({ method: 'POST', url: '/v1/webhooks', headers: bearer(token), payload: { url, events } });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().data as { id: string; secret: string };
}

async function deliveriesOf(webhookId: string) {
  const res = await api.sut.inject({ method: 'GET', url: `/v1/webhooks/${webhookId}/deliveries`, headers: bearer(token) });
  return res.json().data as { id: string; status: string; attempt_count: number; last_error: string | null;
    attempts: { attempt: number; status_code: number | null; error: string | null }[] }[];
}

const workOrderEvent = (type: 'work_order.created' | 'work_order.assigned') => ({
  tenantId: org.id, type, occurredAt: new Date().toISOString(), data: { id: randomUUID(), title: 'Valve' }, idempotencyKey: randomUUID(),
});

describe('webhook delivery safety and recovery', () => {
  it('checks the address again after resolving at delivery, and connects to the address it checked', async () => {
    // The DNS seam: one name resolves inside (not allowed), one to the allowed receiver address.
    const resolver: Resolver = async (host) => [{ address: host === 'inside.example.test' ? '127.0.0.2' : '127.0.0.1', family: 4 }];
    const sut = new DeliveryWorker(worker, createLogger('silent'), {
      secretKey: db.config.webhookSecretKey, allowHosts: db.config.WEBHOOK_ALLOW_HOSTS, timeoutMs: 1000, retryDelaysMs: [50],
      endpointConcurrency: 4, maxInFlight: 16, disableAfterMs: 86_400_000, pollMs: 100, resolver,
    });
    await sut.start();
    try {
      const inside = await createWebhook(`http://inside.example.test:${receiver.port}/inside`, ['work_order.created']);
      const outside = await createWebhook(`http://outside.example.test:${receiver.port}/outside`, ['work_order.created']);
      await insertEvents(worker, [workOrderEvent('work_order.created')]);
      await waitFor(async () => (await deliveriesOf(inside.id))[0]?.status === 'failed', 'the refused delivery');
      await waitFor(() => receiver.at('/outside').length === 1, 'the allowed delivery');
      const [refused] = await deliveriesOf(inside.id);
      expect(refused!.attempts).toHaveLength(1);
      expect(refused!.last_error).toMatch(/address refused: inside\.example\.test resolves to 127\.0\.0\.2/);
      expect(receiver.at('/inside')).toHaveLength(0);
      // Reached through the address the check accepted, under the URL's own host name.
      const got = receiver.at('/outside')[0]!;
      expect(got.headers.host).toBe(`outside.example.test:${receiver.port}`);
      expect(verifySignature(got.headers['x-fieldops-signature'], got.body, outside.secret)).toBe(true);
    } finally {
      await sut.close();
    }
  });

  it('completes, once, a delivery whose worker was killed mid-attempt, after a worker starts again', async () => {
    answers.set('/interrupted', (n) => (n === 1 ? 'hang' : { status: 200 }));
    const hook = await createWebhook(receiver.url('/interrupted'), ['work_order.assigned']);
    const child = spawn(process.execPath, ['--import', 'tsx', entry, 'start', '--role', 'webhooks'], {
      cwd: root,
      env: {
        ...process.env, DATABASE_URL: db.config.DATABASE_URL, REDIS_URL: db.config.REDIS_URL, REDIS_PREFIX: db.config.REDIS_PREFIX,
        DATA_DIR: db.config.DATA_DIR, LOG_LEVEL: 'silent', FIELDOPS_DEMO: '0', MIGRATE_ON_START: 'false',
        WEBHOOK_SECRET_KEY: db.config.webhookSecretKey, WEBHOOK_ALLOW_HOSTS: '127.0.0.1', WEBHOOK_TIMEOUT_MS: '1000',
        WEBHOOK_RETRY_DELAYS_MS: '50,50', WEBHOOK_POLL_MS: '100',
      },
      stdio: 'ignore',
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let restarted: Platform | null = null;
    try {
      await insertEvents(worker, [workOrderEvent('work_order.assigned')]);
      await waitFor(() => receiver.at('/interrupted').length === 1, { what: 'the first attempt, in the child process', timeoutMs: 60_000 });
      child.kill('SIGKILL');
      await exited;
      restarted = await startRoles(db.config, ['webhooks']);
      await waitFor(async () => (await deliveriesOf(hook.id))[0]?.status === 'delivered', 'the delivery after the lease ran out');
      await new Promise((resolve) => setTimeout(resolve, 500)); // nothing more may come
      const [delivery] = await deliveriesOf(hook.id);
      // The killed attempt left no record; the second one delivered.
      expect(delivery!.attempt_count).toBe(2);
      expect(delivery!.attempts.map((a) => [a.attempt, a.status_code])).toEqual([[2, 200]]);
      const got = receiver.at('/interrupted');
      expect(got).toHaveLength(2);
      expect(got.map((r) => r.headers['x-fieldops-delivery'])).toEqual([delivery!.id, delivery!.id]);
    } finally {
      child.kill('SIGKILL');
      await restarted?.close();
    }
  }, 90_000);

  it('hands back at shutdown the deliveries it claimed ahead and never started: due again, no attempt counted', async () => {
    answers.set('/held', () => 'hang');
    const hook = await createWebhook(receiver.url('/held'), ['work_order.created']);
    const sut = new DeliveryWorker(worker, createLogger('silent'), {
      secretKey: db.config.webhookSecretKey, allowHosts: db.config.WEBHOOK_ALLOW_HOSTS, timeoutMs: 1000, retryDelaysMs: [60_000],
      endpointConcurrency: 1, maxInFlight: 4, disableAfterMs: 86_400_000, pollMs: 100,
    });
    // Three work orders (three keys): one attempt in flight to the hanging endpoint, the others held for its slot.
    await insertEvents(worker, [workOrderEvent('work_order.created'), workOrderEvent('work_order.created'), workOrderEvent('work_order.created')]);
    await sut.start();
    try {
      await waitFor(() => receiver.at('/held').length === 1, 'the first attempt');
    } finally {
      await sut.close();
    }
    const deliveries = await deliveriesOf(hook.id);
    expect(deliveries.map((d) => d.attempt_count).sort()).toEqual([0, 0, 1]);
    const { rows } = await db.owner.query<{ due: boolean }>(
      `select next_attempt_at <= now() as due from webhook_deliveries where webhook_id = $1 and attempts = 0`, [hook.id]);
    expect(rows.map((r) => r.due)).toEqual([true, true]);
    expect(receiver.at('/held')).toHaveLength(1);
  });
});
