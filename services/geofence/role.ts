import { IdempotencyKeyPurge } from '../jobs/idempotency-purge.js';
import { OutboxRelay } from '../jobs/outbox-relay.js';
import { PartitionMaintenance } from '../jobs/partition-maintenance.js';
import { QuoteExpiry } from '../jobs/quote-expiry.js';
import type { RoleStarter } from '../shared/runtime.js';
import { GEOFENCE_GROUP, GeofenceWorker } from './geofence-worker.js';
import { StreamTrimmer } from './stream-trimmer.js';

/**
 * The `geofence` role: evaluates fixes and verifies punches (GeofenceWorker) and trims the streams it
 * consumes. It also hosts the platform's jobs (services/jobs/): the events outbox relay to
 * `events:{tenant}` (one relay active per database; this one may stand by), the hourly time-series
 * partition maintenance, the hourly purge of expired idempotency keys and the minute's quote expiry —
 * see docs/design.md, "Jobs".
 */
export const startRole: RoleStarter = async (runtime) => {
  const log = runtime.log.child({ role: 'geofence' });
  const pool = runtime.pool('worker');
  const worker = new GeofenceWorker(runtime.config, runtime.backplane, pool, runtime.streams, log);
  const relay = new OutboxRelay(pool, runtime.bus(), log, { streams: runtime.streams, maxLen: runtime.config.STREAM_MAXLEN });
  const trimmer = new StreamTrimmer(runtime.bus(), () => [...runtime.streams.allPositionShards(), runtime.streams.punches], GEOFENCE_GROUP, log);
  const partitions = new PartitionMaintenance(pool, log);
  const idempotencyKeys = new IdempotencyKeyPurge(pool, log);
  const quotes = new QuoteExpiry(pool, log);
  try {
    await worker.start();
    relay.start();
    trimmer.start();
    partitions.start();
    idempotencyKeys.start();
    quotes.start();
  } catch (err) {
    await worker.close().catch(() => {});
    throw err;
  }
  log.info({ worker: worker.workerId }, 'geofence role started');
  let closing: Promise<void> | null = null;
  return {
    name: 'geofence',
    endpoints: {},
    close: () =>
      (closing ??= (async () => {
        partitions.close();
        idempotencyKeys.close();
        quotes.close();
        await Promise.all([worker.close(), relay.close(), trimmer.close()]);
      })()),
  };
};
