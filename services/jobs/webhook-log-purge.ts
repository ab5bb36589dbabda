import type { Queryable } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import { IntervalJob } from './interval-job.js';

const DEFAULT_INTERVAL_MS = 3_600_000;
/** Rows per delete statement: a long log is purged in short statements, not one long lock-holding one. */
const PURGE_BATCH = 5000;

export interface WebhookLogPurgeResult {
  /** Deliveries of disabled endpoints that waited past the retention period and were failed. */
  expired: number;
  /** Finished deliveries deleted (with their attempts). */
  purged: number;
}

/**
 * Fails the deliveries (pings aside) still waiting on a disabled endpoint that were created more than
 * `retentionDays` ago: nobody will receive them, and failed they fall under the purge. Then deletes the
 * deliveries finished (delivered or failed) more than `retentionDays` ago, of every tenant, with their
 * attempts (the foreign key's cascade). As the worker role, which may delete finished deliveries only
 * (migration 012).
 */
export async function purgeWebhookLog(db: Queryable, retentionDays: number): Promise<WebhookLogPurgeResult> {
  // Expired deliveries are the oldest of their keys; a queued one left behind (newer than the cutoff) is
  // made pending so that the key moves on if the endpoint is enabled again.
  const { rows: [counted] } = await db.query<{ expired: number }>(
    `with expired as (
       update webhook_deliveries d
          set status = 'failed', completed_at = now(), last_error = 'expired: the endpoint stayed disabled'
         from webhooks w
        where w.id = d.webhook_id and not w.enabled and d.status in ('queued', 'pending') and d.event_type <> 'ping'
          and d.created_at < now() - make_interval(days => $1)
       returning d.webhook_id, d.ordering_key
     ), promoted as (
       update webhook_deliveries q set status = 'pending', next_attempt_at = now()
        where q.seq in (select (select min(n.seq) from webhook_deliveries n
                                 where n.webhook_id = k.webhook_id and n.ordering_key = k.ordering_key and n.status = 'queued'
                                   and n.created_at >= now() - make_interval(days => $1))
                          from (select distinct webhook_id, ordering_key from expired) k
                         where not exists (select from webhook_deliveries p
                                            where p.webhook_id = k.webhook_id and p.ordering_key = k.ordering_key
                                              and p.status = 'pending' and p.created_at >= now() - make_interval(days => $1)))
     )
     select count(*)::int as expired from expired`,
    [retentionDays],
  );
  const expired = counted?.expired ?? 0;
  let purged = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `delete from webhook_deliveries
        where seq in (select seq from webhook_deliveries
                       where status in ('delivered', 'failed') and completed_at < now() - make_interval(days => $1)
                       order by completed_at limit $2)`,
      [retentionDays, PURGE_BATCH],
    );
    purged += rowCount ?? 0;
    if ((rowCount ?? 0) < PURGE_BATCH) break;
  }
  return { expired, purged };
}

/**
 * Keeps the webhook delivery log to `WEBHOOK_LOG_RETENTION_DAYS` (docs/design.md, "Webhooks"): at start
 * and hourly, in every webhooks process (several purging at once only share the work). A failure is
 * logged and tried again an hour later.
 */
export class WebhookLogPurge extends IntervalJob {
  constructor(pool: Queryable, log: Logger, retentionDays: number, intervalMs = DEFAULT_INTERVAL_MS) {
    super(async () => {
      const { expired, purged } = await purgeWebhookLog(pool, retentionDays);
      if (expired || purged) log.info({ expired, purged, retentionDays }, 'webhook delivery log purged');
    }, log, 'webhook delivery log purge failed', intervalMs);
  }
}
