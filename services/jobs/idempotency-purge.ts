import type { Queryable } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import { IntervalJob } from './interval-job.js';

const DEFAULT_INTERVAL_MS = 3_600_000;

/** Deletes idempotency keys past their time to live (`idempotency_ttl()`, 24 h), of every tenant; returns how many. */
export async function purgeExpiredIdempotencyKeys(db: Queryable): Promise<number> {
  const { rowCount } = await db.query('delete from idempotency_keys where created_at < now() - idempotency_ttl()');
  return rowCount ?? 0;
}

/**
 * Keeps `idempotency_keys` small (docs/design.md, "REST conventions"): at start and hourly, in every
 * process that hosts the jobs, as the worker role — whose only rights on the table are to see and delete
 * expired keys (migration 007). The API also replaces an expired key it meets, so a late purge changes
 * no answer; a failure is logged and tried again an hour later.
 */
export class IdempotencyKeyPurge extends IntervalJob {
  constructor(pool: Queryable, log: Logger, intervalMs = DEFAULT_INTERVAL_MS) {
    super(() => purgeExpiredIdempotencyKeys(pool), log, 'idempotency key purge failed', intervalMs);
  }
}
