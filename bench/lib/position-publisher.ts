import { randomUUID } from 'node:crypto';
import type { StreamBus } from '../../services/shared/bus.js';
import { encodePosition, recordEntries, shardKey, type PositionRecord, type StreamNames } from '../../services/shared/contracts/stream-codec.js';

const ASSETS = 1000;
const TICK_MS = 5;
/** One append's worth at most: an unpaced publisher catching up on its limit sends it over a few ticks. */
const MAX_PER_TICK = 2000;

/**
 * Appends positions to the `positions:{n}` shards at a fixed rate, one entry per shard per tick, as
 * the ingest publisher does — on any StreamBus: Redis from the bench process, or the in-process bus
 * inside the role's own process (`fanout --embedded`).
 */
export class PositionPublisher {
  private timer: NodeJS.Timeout | null = null;
  private readonly assets: { assetId: string; deviceId: string; shard: string }[];
  private next = 0;
  published = 0;
  /** Positions not to publish past (since `start`): the bench's window over what the sockets have taken. */
  limit = Infinity;

  constructor(private readonly bus: StreamBus, names: StreamNames, private readonly tenantId: string) {
    this.assets = Array.from({ length: ASSETS }, () => {
      const assetId = randomUUID();
      const deviceId = randomUUID();
      return { assetId, deviceId, shard: names.positionShard(names.shardOf(shardKey(assetId, deviceId))) };
    });
  }

  /** `perSecond` null: as fast as `limit` lets it (the bench raises the limit as the sockets take positions). */
  start(perSecond: number | null): void {
    const startedMs = Date.now();
    this.published = 0;
    this.limit = perSecond === null ? 0 : Infinity;
    this.timer = setInterval(() => {
      const scheduled = perSecond === null ? Infinity : Math.floor(((Date.now() - startedMs) / 1000) * perSecond) - this.published;
      const due = Math.min(scheduled, this.limit - this.published, MAX_PER_TICK);
      if (due <= 0) return;
      const byShard = new Map<string, PositionRecord[]>();
      const tsMs = Date.now();
      for (let i = 0; i < due; i++) {
        const asset = this.assets[this.next++ % ASSETS]!;
        const record: PositionRecord = {
          id: String(this.next), tenant_id: this.tenantId, device_id: asset.deviceId, asset_id: asset.assetId, ts_ms: tsMs,
          lat: 46.9 + (this.next % 1000) / 10_000, lon: 7.4 + (this.next % 997) / 10_000, speed_mps: 12.5, heading_deg: 270,
          accuracy_m: 4, altitude_m: null, battery_pct: null, seq: this.next,
        };
        const batch = byShard.get(asset.shard) ?? [];
        batch.push(record);
        byShard.set(asset.shard, batch);
      }
      const entries = [...byShard].flatMap(([stream, batch]) => recordEntries(stream, batch.map(encodePosition)));
      void this.bus.append(entries, 20_000).catch(() => {});
      this.published += due;
    }, TICK_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
