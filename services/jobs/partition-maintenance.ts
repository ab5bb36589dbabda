import type { Pool } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import { IntervalJob } from './interval-job.js';

const DEFAULT_INTERVAL_MS = 3_600_000;

/**
 * Keeps the natively partitioned time series (`positions`, `punches`) ahead of time: `maintain_time_partitions()`
 * (migration 001) creates the coming days' partitions and drops those past retention. Run at start and hourly
 * by every process that hosts the jobs (the function skips what exists; a failure is logged and tried again an hour
 * later, with three days of partitions made ahead). On TimescaleDB it does nothing: TimescaleDB's own chunk and
 * retention policies do that work.
 */
export class PartitionMaintenance extends IntervalJob {
  constructor(pool: Pool, log: Logger, intervalMs = DEFAULT_INTERVAL_MS) {
    super(() => pool.query('select maintain_time_partitions()'), log, 'time partition maintenance failed', intervalMs);
  }
}
