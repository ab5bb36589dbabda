import type { SendResult } from './http-sender.js';

/** What an attempt leads to: done, given up, or another attempt at `nextAttemptAt`. */
export type AttemptOutcome =
  | { status: 'delivered' }
  | { status: 'failed' }
  | { status: 'pending'; nextAttemptAt: Date };

/** A Retry-After beyond this is capped: the schedule as a whole spans about a day. */
const MAX_RETRY_AFTER_S = 24 * 3600;

/**
 * The retry rule (docs/design.md, "Webhooks"): 2xx is delivered; 4xx other than 408 and 429 fails at
 * once (the receiver refused this delivery; it will refuse it again); 5xx, 3xx (no redirect is
 * followed), 408, timeouts and connection errors retry after `delays[n-1]`, jittered down by up to a
 * quarter so that endpoints recovering together are not hit in step; a 429 waits as long as its
 * Retry-After asks. After the last delay the delivery fails. `refused` (an address the target check
 * rejected) fails at once.
 */
export function outcomeOf(result: SendResult & { refused?: boolean }, roundAttempts: number, delaysMs: readonly number[], now = Date.now(), random = Math.random): AttemptOutcome {
  const code = result.statusCode;
  if (code !== null && code >= 200 && code < 300) return { status: 'delivered' };
  if (result.refused) return { status: 'failed' };
  if (code !== null && code >= 400 && code < 500 && code !== 408 && code !== 429) return { status: 'failed' };
  if (roundAttempts > delaysMs.length) return { status: 'failed' };
  const scheduledMs = delaysMs[roundAttempts - 1]! * (0.75 + 0.25 * random());
  const askedMs = code === 429 || code === 503 ? Math.min(result.retryAfterS ?? 0, MAX_RETRY_AFTER_S) * 1000 : 0;
  return { status: 'pending', nextAttemptAt: new Date(now + Math.max(scheduledMs, askedMs)) };
}
