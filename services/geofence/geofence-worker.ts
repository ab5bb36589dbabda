import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Backplane } from '../shared/backplane.js';
import type { Config } from '../shared/config.js';
import type { Pool } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import type { StreamNames } from '../shared/contracts/stream-codec.js';
import { FenceCache } from './fence-cache.js';
import { PositionEvaluator, type PositionEvaluatorOptions } from './position-evaluator.js';
import { PunchWorker } from './punch-worker.js';

export const GEOFENCE_GROUP = 'geofence';

export interface GeofenceWorkerTuning {
  leaseMs: number;
  blockMs: number;
  batchSize: number;
  punchClaimIdleMs: number;
  afterEventsCommitted?: PositionEvaluatorOptions['afterEventsCommitted'];
}

export const DEFAULT_TUNING: GeofenceWorkerTuning = {
  leaseMs: 10_000,
  blockMs: 500,
  batchSize: 1000,
  punchClaimIdleMs: 30_000,
};

/**
 * One geofence worker: the fence cache, the evaluator of the position shards it holds, and the
 * punch verifier. Each loop gets a bus of its own, since a blocking read holds its connection.
 */
export class GeofenceWorker {
  readonly workerId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly fences: FenceCache;
  readonly evaluator: PositionEvaluator;
  readonly punches: PunchWorker;
  private closing: Promise<void> | null = null;

  constructor(config: Config, backplane: Backplane, pool: Pool, streams: StreamNames, log: Logger, tuning: Partial<GeofenceWorkerTuning> = {}) {
    const t = { ...DEFAULT_TUNING, ...tuning };
    const workerLog = log.child({ worker: this.workerId });
    this.fences = new FenceCache(pool, workerLog);
    this.evaluator = new PositionEvaluator(
      {
        bus: backplane.connectBus(),
        coordination: backplane.connectCoordination(),
        pool,
        fences: this.fences,
        streams,
        log: workerLog,
      },
      {
        group: GEOFENCE_GROUP,
        workerId: this.workerId,
        shards: config.POSITION_SHARDS,
        prefix: config.REDIS_PREFIX,
        leaseMs: t.leaseMs,
        blockMs: t.blockMs,
        batchSize: t.batchSize,
        afterEventsCommitted: t.afterEventsCommitted,
      },
    );
    this.punches = new PunchWorker(
      { bus: backplane.connectBus(), pool, fences: this.fences, streams, log: workerLog },
      { group: GEOFENCE_GROUP, workerId: this.workerId, blockMs: t.blockMs, batchSize: Math.min(t.batchSize, 500), claimIdleMs: t.punchClaimIdleMs },
    );
  }

  async start(): Promise<void> {
    await this.fences.start();
    await this.evaluator.start();
    await this.punches.start();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([this.evaluator.close(), this.punches.close()]);
      await this.fences.close();
    })();
    return this.closing;
  }

  /** For failover tests: the evaluator stops as in a crash (nothing acknowledged), the rest closes. */
  kill(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([this.evaluator.kill(), this.punches.close()]);
      await this.fences.close();
    })();
    return this.closing;
  }
}
