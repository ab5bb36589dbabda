import type { Pool } from '../shared/db.js';
import type { Logger } from '../shared/log.js';

const DEFAULT_INTERVAL_MS = 3_600_000;

/**
 * Keeps the natively partitioned time series (`positions`, `punches`) ahead of time: `maintain_time_partitions()`
 * (migration 001) creates the coming days' partitions and drops those past retention. Run at start and hourly
 * by every process that hosts the jobs (the function skips what exists; a failure is logged and tried again an hour
 * later, with three days of partitions made ahead). On TimescaleDB it does nothing: TimescaleDB's own chunk and
 * retention policies do that work.
 */
export class PartitionMaintenance {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly pool: Pool, private readonly log: Logger, private readonly intervalMs = DEFAULT_INTERVAL_MS) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.runOnce(), this.intervalMs);
    this.timer.unref();
    void this.runOnce();
  }

  async runOnce(): Promise<void> {
    await this.pool.query('select maintain_time_partitions()')
      .catch((err: unknown) => this.log.warn({ err }, 'time partition maintenance failed'));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
