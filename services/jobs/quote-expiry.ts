import type { Queryable } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import { IntervalJob } from './interval-job.js';

/** The API treats a quote past its date as expired at once; the job only writes it down, so a minute is plenty. */
const DEFAULT_INTERVAL_MS = 60_000;

/** Moves open quotes (sent or viewed) whose `valid_until` has passed to `expired`, in every tenant; returns how many. */
export async function expireDueQuotes(db: Queryable): Promise<number> {
  const { rowCount } = await db.query(
    `update quotes set stage = 'expired', expired_at = valid_until, updated_at = now()
      where stage in ('sent', 'viewed') and valid_until <= now()`,
  );
  return rowCount ?? 0;
}

/**
 * Writes quote expiry down (docs/design.md, "Quotes"): at start and every minute, as the worker role,
 * which may see and change only open quotes past their date (migration 008). The API already answers
 * and acts on such quotes as expired before this runs; the job makes lists, exports and the database
 * agree. A failure is logged and tried again at the next tick.
 */
export class QuoteExpiry extends IntervalJob {
  constructor(pool: Queryable, log: Logger, intervalMs = DEFAULT_INTERVAL_MS) {
    super(() => expireDueQuotes(pool), log, 'quote expiry failed', intervalMs);
  }
}
