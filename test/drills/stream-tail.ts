import type { StreamEntry } from '../../services/shared/bus.js';
import { RedisStreamBus } from '../../services/shared/redis-bus.js';
import { decodePositions, streamNames, type PositionRecord } from '../../services/shared/contracts/stream-codec.js';
import type { ServerConfig } from '../../services/shared/config.js';
import { strictly } from '../support/streams.js';

/**
 * Everything appended to the `positions:{n}` shards, read as it comes (the geofence role trims what it has
 * evaluated, so the streams cannot be read back at the end). It reads through a consumer group of its own,
 * so the trimming keeps what it has not read yet (an entry appended just before an outage would otherwise be
 * trimmed after it, before the tail could reconnect). Rides out a Redis outage: the group, like the data,
 * survives a restart of its Redis, and reading goes on where it stopped.
 */
export class PositionTail {
  readonly records: PositionRecord[] = [];
  private readonly bus: RedisStreamBus;
  private readonly streams: string[];
  private readonly seen = new Map<string, Set<string>>();
  private running = true;
  private readonly loop: Promise<void>;

  constructor(config: ServerConfig) {
    this.bus = new RedisStreamBus(config.REDIS_URL);
    this.streams = streamNames(config.REDIS_PREFIX, config.POSITION_SHARDS).allPositionShards();
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let grouped = false;
    let interrupted = false;
    while (this.running) {
      try {
        if (!grouped) {
          for (const stream of this.streams) await this.bus.ensureGroup(stream, TAIL_GROUP, '0');
          grouped = true;
        }
        if (interrupted) {
          // A read whose answer was lost with the connection left its entries pending: take them again.
          for (const stream of this.streams) {
            const pending = await this.bus.claimIdle(stream, TAIL_GROUP, 'tail', 0, 100_000);
            this.take(stream, pending);
            await this.bus.ack(stream, TAIL_GROUP, pending.map((e) => e.id));
          }
          interrupted = false;
        }
        for (const batch of await this.bus.readGroup(TAIL_GROUP, 'tail', this.streams, { blockMs: 200, count: 1000 })) {
          this.take(batch.stream, batch.entries);
          await this.bus.ack(batch.stream, TAIL_GROUP, batch.entries.map((e) => e.id));
        }
      } catch {
        interrupted = true;
        await new Promise((resolve) => setTimeout(resolve, 200)); // Redis away: try again where the group stands
      }
    }
  }

  /** Records entries once each, whether read for the first time or taken again after an interruption. */
  private take(stream: string, entries: StreamEntry[]): void {
    const seen = this.seen.get(stream) ?? new Set<string>();
    this.seen.set(stream, seen);
    const fresh = entries.filter((e) => !seen.has(e.id));
    for (const e of fresh) seen.add(e.id);
    this.records.push(...decodePositions(fresh, strictly));
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

const TAIL_GROUP = 'drill-tail';

export const fixKey = (deviceId: string, tsMs: number) => `${deviceId}|${tsMs}`;
