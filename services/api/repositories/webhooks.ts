import type { Queryable } from '../../shared/db.js';
import { conflict } from '../../shared/contracts/errors.js';
import { PING_EVENT } from '../../shared/contracts/webhooks.js';
import { checkIfMatch, type Precondition } from '../preconditions.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { SqlParams } from '../sql.js';

export interface Webhook {
  id: string;
  url: string;
  description: string | null;
  events: string[];
  enabled: boolean;
  failing_since: Date | null;
  disabled_at: Date | null;
  disabled_reason: string | null;
  secret_rotated_at: Date | null;
  previous_secret_expires_at: Date | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export interface WebhookAttempt {
  attempt: number;
  started_at: string;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
  response_excerpt: string | null;
}

export interface WebhookDelivery {
  id: string;
  webhook_id: string;
  event: string;
  event_id: string | null;
  status: 'queued' | 'pending' | 'delivered' | 'failed';
  attempt_count: number;
  next_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Date;
  completed_at: Date | null;
  attempts: WebhookAttempt[];
}

export interface WebhookFields {
  url?: string;
  description?: string | null;
  events?: string[];
  enabled?: boolean;
}

export const WEBHOOK_SORT_FIELDS = ['created_at', 'url'] as const;
export const DELIVERY_SORT_FIELDS = ['created_at'] as const;

const COLUMNS = `w.id, w.url, w.description, w.events, w.enabled, w.failing_since, w.disabled_at, w.disabled_reason,
  w.secret_rotated_at, w.previous_secret_expires_at, w.version, w.created_at, w.updated_at`;

const DELIVERY_COLUMNS = `d.id, d.webhook_id, d.event_type as event, d.event_id::text as event_id, d.status,
  d.attempts as attempt_count, case when d.status = 'pending' then d.next_attempt_at end as next_attempt_at,
  d.last_status_code, d.last_error, d.created_at, d.completed_at,
  coalesce((select json_agg(json_build_object('attempt', a.attempt, 'started_at', a.started_at, 'duration_ms', a.duration_ms,
      'status_code', a.status_code, 'error', a.error, 'response_excerpt', a.response_excerpt) order by a.attempt)
    from webhook_attempts a where a.delivery_seq = d.seq), '[]') as attempts`;

/**
 * Webhook endpoints and their deliveries, for the tenant set on `db` (docs/design.md, "Webhooks"). The
 * signing secret comes in sealed and never goes out of here; deliveries are made by the webhooks role.
 */
export function createWebhookRepository(db: Queryable) {
  const find = async (id: string): Promise<Webhook | null> => {
    const { rows } = await db.query<Webhook>(`select ${COLUMNS} from webhooks w where w.id = $1`, [id]);
    return rows[0] ?? null;
  };

  const findDelivery = async (id: string): Promise<WebhookDelivery | null> => {
    const { rows } = await db.query<WebhookDelivery>(`select ${DELIVERY_COLUMNS} from webhook_deliveries d where d.id = $1`, [id]);
    return rows[0] ?? null;
  };

  return {
    find,
    findDelivery,

    async create(input: { url: string; description?: string | null; events: string[]; enabled?: boolean }, secretSealed: Buffer): Promise<Webhook> {
      const { rows } = await db.query<Webhook>(
        `insert into webhooks as w (tenant_id, url, description, events, enabled, secret_sealed)
         values (app_tenant(), $1, $2, $3, $4, $5) returning ${COLUMNS}`,
        [input.url, input.description ?? null, input.events, input.enabled ?? true, secretSealed],
      );
      return rows[0]!;
    },

    list(filters: { enabled?: boolean }, query: ListQuery): Promise<ListResult<Webhook>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.enabled !== undefined) where.push(`w.enabled = ${params.add(filters.enabled)}`);
      return listPage<Webhook>(db, {
        select: COLUMNS, from: 'webhooks w', where, params, id: 'w.id',
        sortable: { created_at: 'w.created_at', url: 'w.url' }, defaultSort: 'created_at',
      }, query);
    },

    /**
     * Turning an endpoint off records when and why (unless it was off already); turning it back on clears
     * what disabled it: it starts again with a clean record.
     */
    async update(id: string, changes: WebhookFields, precondition: Precondition | null): Promise<Webhook | null> {
      if (!(await checkIfMatch(db, 'webhooks', id, precondition, 'webhook'))) return null;
      const params = new SqlParams();
      const sets = ['updated_at = now()'];
      if (changes.url !== undefined) sets.push(`url = ${params.add(changes.url)}`);
      if (changes.description !== undefined) sets.push(`description = ${params.add(changes.description)}`);
      if (changes.events !== undefined) sets.push(`events = ${params.add(changes.events)}`);
      if (changes.enabled !== undefined) {
        sets.push(`enabled = ${params.add(changes.enabled)}`);
        if (changes.enabled) sets.push('disabled_at = null', 'disabled_reason = null', 'failing_since = null');
        else sets.push('disabled_at = coalesce(w.disabled_at, now())', `disabled_reason = coalesce(w.disabled_reason, 'disabled through the API')`);
      }
      const { rows } = await db.query<Webhook>(
        `update webhooks w set ${sets.join(', ')} where w.id = ${params.add(id)} returning ${COLUMNS}`, params.values);
      return rows[0] ?? null;
    },

    async remove(id: string, precondition: Precondition | null): Promise<boolean> {
      if (!(await checkIfMatch(db, 'webhooks', id, precondition, 'webhook'))) return false;
      const { rowCount } = await db.query('delete from webhooks where id = $1', [id]);
      return rowCount === 1;
    },

    /** The new secret signs from now on; the current one keeps signing too until `overlapS` has passed. */
    async rotateSecret(id: string, secretSealed: Buffer, overlapS: number, precondition: Precondition | null): Promise<Webhook | null> {
      if (!(await checkIfMatch(db, 'webhooks', id, precondition, 'webhook'))) return null;
      const { rows } = await db.query<Webhook>(
        `update webhooks w set previous_secret_sealed = case when $3 > 0 then w.secret_sealed end,
                previous_secret_expires_at = case when $3 > 0 then now() + make_interval(secs => $3) end,
                secret_sealed = $2, secret_rotated_at = now(), updated_at = now()
          where w.id = $1 returning ${COLUMNS}`,
        [id, secretSealed, overlapS],
      );
      return rows[0] ?? null;
    },

    /** Queues a `ping` to the endpoint (enabled or not: the point may be to check it before enabling). */
    async queuePing(webhook: Webhook, tenantId: string): Promise<WebhookDelivery> {
      const data = { webhook_id: webhook.id, url: webhook.url, message: 'This is a test delivery from fieldops.' };
      const { rows } = await db.query<{ id: string }>(
        `insert into webhook_deliveries (tenant_id, webhook_id, event_type, occurred_at, data, ordering_key)
         values ($1, $2, $3, now(), $4, 'ping:' || gen_random_uuid()) returning id`,
        [tenantId, webhook.id, PING_EVENT, JSON.stringify(data)],
      );
      return (await findDelivery(rows[0]!.id))!;
    },

    listDeliveries(webhookId: string, filters: { status?: string; event?: string }, query: ListQuery): Promise<ListResult<WebhookDelivery>> {
      const params = new SqlParams();
      const where = [`d.webhook_id = ${params.add(webhookId)}`];
      if (filters.status) where.push(`d.status = ${params.add(filters.status)}`);
      if (filters.event) where.push(`d.event_type = ${params.add(filters.event)}`);
      return listPage<WebhookDelivery>(db, {
        select: DELIVERY_COLUMNS, from: 'webhook_deliveries d', where, params, id: 'd.seq',
        sortable: { created_at: 'd.created_at' }, defaultSort: '-created_at', total: false,
      }, query);
    },

    /**
     * Queues a finished delivery again, same id (a receiver deduplicating on X-Fieldops-Delivery sees it
     * as the same delivery), with a fresh retry schedule; it goes out on its own, not behind its key's
     * open deliveries. A delivery still queued or pending is a 409.
     */
    async redeliver(id: string): Promise<WebhookDelivery | null> {
      const { rows } = await db.query<{ status: string }>('select status from webhook_deliveries where id = $1 for update', [id]);
      if (!rows[0]) return null;
      if (rows[0].status === 'pending' || rows[0].status === 'queued') {
        throw conflict(`this delivery is still ${rows[0].status}: it will be attempted by itself`);
      }
      await db.query(
        `update webhook_deliveries set status = 'pending', round_attempts = 0, next_attempt_at = now(), completed_at = null
          where id = $1`, [id]);
      return findDelivery(id);
    },
  };
}

export type WebhookRepository = ReturnType<typeof createWebhookRepository>;
