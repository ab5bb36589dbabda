import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeWebhookLog, WebhookLogPurge } from '../../services/jobs/webhook-log-purge.js';
import { createServicePool, withTenant, type Pool } from '../../services/shared/db.js';
import { createLogger } from '../../services/shared/log.js';
import { createDeliveryStore } from '../../services/webhooks/delivery-store.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { waitFor } from '../support/wait.js';

let db: TestDatabase;
let worker: Pool;
let org: TestOrg;

beforeAll(async () => {
  db = await createTestDatabase();
  worker = createServicePool(db.config, 'worker', 2);
  org = await createOrg(db.owner, 'unlimited');
}, 60_000);

afterAll(async () => {
  await worker?.end();
  await db?.drop();
});

async function createEndpoint(enabled: boolean): Promise<string> {
  const { rows } = await withTenant(db.owner, org.id, (t) => t.query<{ id: string }>(
    `insert into webhooks (tenant_id, url, events, enabled, secret_sealed) values (app_tenant(), 'https://hooks.example.com/x', '{*}', $1, $2)
     returning id`, [enabled, randomBytes(48)]));
  return rows[0]!.id;
}

/** A delivery `ageDays` old (created, and completed when finished), with one attempt row. */
async function delivery(webhookId: string, status: string, ageDays: number, key = `work_order:${randomBytes(4).toString('hex')}`): Promise<string> {
  return withTenant(db.owner, org.id, async (t) => {
    const { rows } = await t.query<{ seq: string }>(
      `insert into webhook_deliveries (tenant_id, webhook_id, event_type, occurred_at, ordering_key, status, attempts, created_at, completed_at)
       values (app_tenant(), $1, 'work_order.created', now(), $2, $3, 1, now() - make_interval(secs => $4::double precision * 86400),
               case when $3 in ('delivered', 'failed') then now() - make_interval(secs => $4::double precision * 86400) end)
       returning seq`, [webhookId, key, status, ageDays]);
    await t.query(`insert into webhook_attempts (delivery_seq, attempt, tenant_id, started_at, duration_ms, status_code)
                   values ($1, 1, app_tenant(), now(), 5, 200)`, [rows[0]!.seq]);
    return rows[0]!.seq;
  });
}

async function stateOf(seqs: string[]): Promise<Record<string, { status: string; attempts: number } | undefined>> {
  const { rows } = await withTenant(db.owner, org.id, (t) => t.query<{ seq: string; status: string; attempts: number }>(
    `select d.seq, d.status, (select count(*)::int from webhook_attempts a where a.delivery_seq = d.seq) as attempts
       from webhook_deliveries d where d.seq = any ($1::bigint[])`, [seqs]));
  return Object.fromEntries(rows.map((r) => [r.seq, { status: r.status, attempts: r.attempts }]));
}

describe('webhook delivery log retention', () => {
  it('deletes finished deliveries past the retention with their attempts, and keeps the rest', async () => {
    const live = await createEndpoint(true);
    const oldDelivered = await delivery(live, 'delivered', 40);
    const oldFailed = await delivery(live, 'failed', 31);
    const recentDelivered = await delivery(live, 'delivered', 29);
    const oldPending = await delivery(live, 'pending', 40);
    const oldQueued = await delivery(live, 'queued', 40);

    const result = await purgeWebhookLog(worker, 30);

    expect(result.purged).toBe(2);
    const state = await stateOf([oldDelivered, oldFailed, recentDelivered, oldPending, oldQueued]);
    expect(state[oldDelivered]).toBeUndefined();
    expect(state[oldFailed]).toBeUndefined();
    expect(state[recentDelivered]).toEqual({ status: 'delivered', attempts: 1 });
    expect(state[oldPending]).toEqual({ status: 'pending', attempts: 1 });
    expect(state[oldQueued]).toEqual({ status: 'queued', attempts: 1 });
    const { rows } = await db.owner.query<{ n: number }>('select count(*)::int as n from webhook_attempts where delivery_seq = any ($1::bigint[])', [[oldDelivered, oldFailed]]);
    expect(rows[0]!.n).toBe(0);
  });

  it('expires deliveries that waited on a disabled endpoint past the retention, and moves their key on', async () => {
    const disabled = await createEndpoint(false);
    const key = 'asset:expiring';
    const head = await delivery(disabled, 'pending', 40, key);
    const behindOld = await delivery(disabled, 'queued', 35, key);
    const behindRecent = await delivery(disabled, 'queued', 2, key);
    const lastRecent = await delivery(disabled, 'queued', 1, key);

    const result = await purgeWebhookLog(worker, 30);

    expect(result.expired).toBe(2);
    const state = await stateOf([head, behindOld, behindRecent, lastRecent]);
    expect(state[head]?.status).toBe('failed');
    expect(state[behindOld]?.status).toBe('failed');
    // The oldest delivery left is the key's head now, so it goes out first if the endpoint is enabled again.
    expect(state[behindRecent]?.status).toBe('pending');
    expect(state[lastRecent]?.status).toBe('queued');
    const { rows } = await db.owner.query<{ last_error: string }>('select last_error from webhook_deliveries where seq = $1', [head]);
    expect(rows[0]!.last_error).toMatch(/expired/);
  });

  it('runs as a job: at start, with the retention it was given', async () => {
    const live = await createEndpoint(true);
    const old = await delivery(live, 'delivered', 8);
    const kept = await delivery(live, 'delivered', 6);
    const job = new WebhookLogPurge(worker, createLogger('silent'), 7);
    job.start();
    try {
      await waitFor(async () => !(old in (await stateOf([old]))), 'the purge at start');
    } finally {
      job.close();
    }
    expect(await stateOf([old, kept])).toEqual({ [kept]: { status: 'delivered', attempts: 1 } });
  });

  it('lets the worker role delete finished deliveries only, and no attempt directly', async () => {
    const live = await createEndpoint(true);
    const pending = await delivery(live, 'pending', 1);
    const delivered = await delivery(live, 'delivered', 1);
    const { rowCount } = await worker.query('delete from webhook_deliveries where seq = any ($1::bigint[])', [[pending, delivered]]);
    expect(rowCount).toBe(1);
    expect(await stateOf([pending, delivered])).toEqual({ [pending]: { status: 'pending', attempts: 1 } });
    await expect(worker.query('delete from webhook_attempts where delivery_seq = $1', [pending])).rejects.toThrow(/permission denied/);
  });
});

describe('the sweep for stranded queued deliveries', () => {
  it('looks at deliveries created in its window only, or at every one when asked, and never past a pending one', async () => {
    const live = await createEndpoint(true);
    const ago = (seconds: number) => seconds / 86_400;
    const recent = await delivery(live, 'queued', ago(10));
    const recentBehind = await delivery(live, 'queued', ago(8), 'asset:behind');
    const old = await delivery(live, 'queued', ago(600));
    const waiting = await delivery(live, 'pending', ago(20), 'asset:busy');
    const behindPending = await delivery(live, 'queued', ago(10), 'asset:busy');
    const tooNew = await delivery(live, 'queued', ago(0.5));
    await delivery(live, 'queued', ago(9), 'asset:behind').then((seq) => expect(Number(seq)).toBeGreaterThan(Number(recentBehind)));

    const store = createDeliveryStore(worker);
    expect(await store.promoteStranded(2000, 60_000)).toBe(2);
    let state = await stateOf([recent, recentBehind, old, waiting, behindPending, tooNew]);
    expect(state[recent]?.status).toBe('pending');
    expect(state[recentBehind]?.status).toBe('pending');
    expect(state[old]?.status).toBe('queued');
    expect(state[behindPending]?.status).toBe('queued');
    expect(state[tooNew]?.status).toBe('queued');

    // A full sweep (the first of a process) reaches the old one too; a key with a pending delivery stays.
    await store.promoteStranded(2000, null);
    state = await stateOf([old, behindPending]);
    expect(state[old]?.status).toBe('pending');
    expect(state[behindPending]?.status).toBe('queued');
  });
});
