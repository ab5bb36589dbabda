import { OutboxRelay } from '../shared/outbox-relay.js';
import type { RoleStarter } from '../shared/runtime.js';
import { GEOFENCE_GROUP, GeofenceWorker } from './geofence-worker.js';
import { StreamTrimmer } from './stream-trimmer.js';

const PARTITION_MAINTENANCE_MS = 3_600_000;

/**
 * The `geofence` role: evaluates fixes and verifies punches (GeofenceWorker), relays the events
 * outbox to `events:{tenant}` (one relay active per database; this one may stand by), and keeps
 * the time-series partitions ahead of time, hourly.
 */
export const startRole: RoleStarter = async (runtime) => {
  const log = runtime.log.child({ role: 'geofence' });
  const pool = runtime.pool('worker');
  const worker = new GeofenceWorker(runtime.config, pool, runtime.streams, log);
  const relay = new OutboxRelay(pool, runtime.bus(), log, { streams: runtime.streams, maxLen: runtime.config.STREAM_MAXLEN });
  const trimmer = new StreamTrimmer(runtime.bus(), () => [...runtime.streams.allPositionShards(), runtime.streams.punches], GEOFENCE_GROUP, log);
  const maintainPartitions = () =>
    pool.query('select maintain_time_partitions()').catch((err: unknown) => log.warn({ err }, 'time partition maintenance failed'));
  const partitionTimer = setInterval(() => void maintainPartitions(), PARTITION_MAINTENANCE_MS);
  partitionTimer.unref();
  try {
    await worker.start();
    relay.start();
    trimmer.start();
    void maintainPartitions();
  } catch (err) {
    clearInterval(partitionTimer);
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
        clearInterval(partitionTimer);
        await Promise.all([worker.close(), relay.close(), trimmer.close()]);
      })()),
  };
};
