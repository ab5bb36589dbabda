import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { GeofenceWorker, type GeofenceWorkerTuning } from '../../services/geofence/geofence-worker.js';
import { createBackplane } from '../../services/shared/backplane.js';
import { createServicePool, type Pool } from '../../services/shared/db.js';
import { createLogger } from '../../services/shared/log.js';
import { OutboxRelay } from '../../services/jobs/outbox-relay.js';
import type { Redis } from 'ioredis';
import { createRedis, RedisStreamBus } from '../../services/shared/redis-bus.js';
import type { EventEnvelope } from '../../services/shared/contracts/events.js';
import {
  decodeEvent, positionEntries, punchEntries, streamNames, type PositionRecord, type PunchRecord, type StreamNames,
} from '../../services/shared/contracts/stream-codec.js';
import { compareStreamIds } from '../../services/shared/stream-ids.js';
import type { TestDatabase } from '../support/database.js';
import { waitFor } from '../support/wait.js';
import { asTenant } from '../support/factories.js';

/** Fast leases and short blocking reads, so that takeovers happen within a test's patience. */
export const TEST_TUNING: Partial<GeofenceWorkerTuning> = { leaseMs: 1000, blockMs: 100, batchSize: 200, punchClaimIdleMs: 1000 };

/** What the geofence tests share: the worker pool, a writer bus for XADD, stream names, a silent logger. */
export class GeofenceHarness {
  readonly streams: StreamNames;
  readonly pool: Pool;
  readonly bus: RedisStreamBus;
  readonly log = createLogger('silent');
  private readonly workers: GeofenceWorker[] = [];
  private readonly relays: OutboxRelay[] = [];
  private seq = 0;

  constructor(readonly db: TestDatabase) {
    this.streams = streamNames(db.config.REDIS_PREFIX, db.config.POSITION_SHARDS);
    this.pool = createServicePool(db.config, 'worker', 8);
    this.bus = new RedisStreamBus(db.config.REDIS_URL, db.config.REDIS_PREFIX);
  }

  async startWorker(tuning: Partial<GeofenceWorkerTuning> = {}): Promise<GeofenceWorker> {
    const worker = new GeofenceWorker(this.db.config, createBackplane(this.db.config), this.pool, this.streams, this.log, { ...TEST_TUNING, ...tuning });
    this.workers.push(worker);
    await worker.start();
    return worker;
  }

  startRelay(options: { pollMs?: number; standbyRetryMs?: number } = {}): OutboxRelay {
    const relay = new OutboxRelay(this.pool, this.bus, this.log, { streams: this.streams, maxLen: 10_000, standbyRetryMs: 100, ...options });
    this.relays.push(relay);
    relay.start();
    return relay;
  }

  /** XADDs fixes as ingest does, through the stream codec: entries per shard holding that shard's records. */
  async publishFixes(fixes: PositionRecord[]): Promise<void> {
    await this.bus.append(positionEntries(this.streams, fixes), 100_000);
  }

  async publishPunches(punches: PunchRecord[]): Promise<void> {
    await this.bus.append(punchEntries(this.streams, punches), 100_000);
  }

  fix(at: { tenantId: string; deviceId: string; assetId?: string | null; lon: number; lat: number; tsMs: number; accuracyM?: number }): PositionRecord {
    return {
      id: String(++this.seq),
      tenant_id: at.tenantId,
      device_id: at.deviceId,
      asset_id: at.assetId ?? null,
      ts_ms: at.tsMs,
      lat: at.lat,
      lon: at.lon,
      speed_mps: 3,
      heading_deg: 90,
      accuracy_m: at.accuracyM ?? 5,
      altitude_m: null,
      battery_pct: null,
      seq: null,
    };
  }

  /** Waits until the group has read and acknowledged everything appended to the given streams. */
  async drained(streams: string[] = this.streams.allPositionShards(), timeoutMs = 15_000): Promise<void> {
    await waitFor(async () => {
      for (const stream of streams) {
        const groups = (await this.redis().xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
        const info = groups.map((g) => toObject(g)).find((g) => g.name === 'geofence');
        const last = (await this.redis().xrevrange(stream, '+', '-', 'COUNT', 1))[0]?.[0];
        if (!last) continue;
        if (!info || Number(info.pending) !== 0 || compareStreamIds(String(info['last-delivered-id']), last) < 0) return false;
      }
      return true;
    }, { what: 'the geofence group to drain its streams', timeoutMs });
  }

  async events(tenantId: string, where = 'true', params: unknown[] = []): Promise<EventRow[]> {
    // The test owner is a superuser, which row-level security does not bind: filter explicitly.
    return asTenant(this.db.owner, tenantId, async (db) =>
      (await db.query<EventRow>(`select * from events where tenant_id = $${params.length + 1} and (${where}) order by id`, [...params, tenantId])).rows);
  }

  /** The envelopes in `events:{tenant}`, oldest first. */
  async streamedEvents(tenantId: string): Promise<StreamedEvent[]> {
    const entries = await this.bus.range(this.streams.events(tenantId), '-', '+', 100_000);
    return entries.map((e) => {
      const envelope = decodeEvent(e, tenantId);
      if (!envelope) throw new Error(`entry ${e.id} of events:${tenantId} does not match the stream contract`);
      return { ...envelope, data: envelope.data as Record<string, unknown>, streamId: e.id };
    });
  }

  /** Waits until every event row of the tenant is published. */
  async published(tenantId: string): Promise<void> {
    await waitFor(async () => {
      const rows = await this.events(tenantId, 'published_at is null');
      return rows.length === 0;
    });
  }

  private redisClient: Redis | null = null;
  /** A plain client for inspecting streams and groups. */
  redis(): Redis {
    this.redisClient ??= createRedis(this.db.config.REDIS_URL);
    return this.redisClient;
  }

  /** Stops workers and relays and closes connections; the test database's drop() removes the Redis keys. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.workers.map((w) => w.close()), ...this.relays.map((r) => r.close())]);
    await this.bus.close();
    this.redisClient?.disconnect();
    await this.pool.end();
  }
}

/** An event as read back from `events:{tenant}`, its data loosely typed for assertions. */
export interface StreamedEvent extends Omit<EventEnvelope, 'data'> {
  data: Record<string, unknown>;
  streamId: string;
}

export interface EventRow {
  id: string;
  tenant_id: string;
  type: string;
  occurred_at: Date;
  data: Record<string, unknown>;
  idempotency_key: string;
  asset_id: string | null;
  device_id: string | null;
  employee_id: string | null;
  geofence_id: string | null;
  stream_id: string | null;
  published_at: Date | null;
}

function toObject(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

export interface FenceInput {
  name?: string;
  kind?: 'site' | 'restricted' | 'zone';
  geometry: object;
  radius_m?: number;
  width_m?: number;
  confirm_fixes?: number;
  schedule?: object | null;
  asset_filter?: object | null;
}

/** Inserts a fence as the API would (owner with the tenant set, RLS applies). */
export async function insertFence(owner: pg.Pool, tenantId: string, fence: FenceInput): Promise<string> {
  return asTenant(owner, tenantId, async (db) => {
    const { rows } = await db.query<{ id: string }>(
      `insert into geofences (tenant_id, name, kind, geometry, radius_m, width_m, confirm_fixes, schedule, asset_filter)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id`,
      [tenantId, fence.name ?? 'fence', fence.kind ?? 'zone', JSON.stringify(fence.geometry), fence.radius_m ?? null,
        fence.width_m ?? null, fence.confirm_fixes ?? 3, fence.schedule ? JSON.stringify(fence.schedule) : null,
        fence.asset_filter ? JSON.stringify(fence.asset_filter) : null],
    );
    return rows[0]!.id;
  });
}

/** A square polygon of `halfSideDeg` around a centre (lon, lat), as a closed ring. */
export function square(lon: number, lat: number, halfSideDeg: number): [number, number][] {
  return [
    [lon - halfSideDeg, lat - halfSideDeg],
    [lon + halfSideDeg, lat - halfSideDeg],
    [lon + halfSideDeg, lat + halfSideDeg],
    [lon - halfSideDeg, lat + halfSideDeg],
    [lon - halfSideDeg, lat - halfSideDeg],
  ];
}

export const uuid = () => randomUUID();
