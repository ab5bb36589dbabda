import { RedisStreamBus } from '../../services/shared/redis-bus.js';
import { decodePositions, streamNames, type PositionRecord } from '../../services/shared/contracts/stream-codec.js';
import type { ServerConfig } from '../../services/shared/config.js';
import { strictly } from '../support/streams.js';

/**
 * Everything appended to the `positions:{n}` shards, read as it comes (the geofence role trims what it has
 * evaluated, so the streams cannot be read back at the end). Rides out a Redis outage: it retries from its
 * last ids, so a restarted Redis with its data continues the record.
 */
export class PositionTail {
  readonly records: PositionRecord[] = [];
  private readonly bus: RedisStreamBus;
  private readonly cursors: Record<string, string> = {};
  private running = true;
  private readonly loop: Promise<void>;

  constructor(config: ServerConfig) {
    this.bus = new RedisStreamBus(config.REDIS_URL);
    for (const stream of streamNames(config.REDIS_PREFIX, config.POSITION_SHARDS).allPositionShards()) this.cursors[stream] = '0';
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        for (const batch of await this.bus.read(this.cursors, { blockMs: 200, count: 1000 })) {
          this.records.push(...decodePositions(batch.entries, strictly));
          this.cursors[batch.stream] = batch.entries.at(-1)!.id;
        }
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200)); // Redis away: try again from the same ids
      }
    }
  }

  /** How many times each `device|ts_ms` was streamed. */
  counts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.records) counts.set(fixKey(r.device_id, r.ts_ms), (counts.get(fixKey(r.device_id, r.ts_ms)) ?? 0) + 1);
    return counts;
  }

  async close(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.bus.close();
  }
}

export const fixKey = (deviceId: string, tsMs: number) => `${deviceId}|${tsMs}`;
