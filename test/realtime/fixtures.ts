import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { Redis } from 'ioredis';
import type { ServerConfig } from '../../services/shared/config.js';
import { sessionTokens } from '../../services/shared/jwt.js';
import { newApiKey, sha256 } from '../../services/shared/secrets.js';
import type { AppendRequest } from '../../services/shared/bus.js';
import type { EventEnvelope, EventType } from '../../services/shared/contracts/events.js';
import { eventEntry, PAYLOAD_FIELD, positionEntries, streamNames, type PositionRecord, type StreamNames } from '../../services/shared/contracts/stream-codec.js';
import { asTenant, type TestOrg } from '../support/factories.js';

/** Writes to the streams the way ingest and the event relay do, so the realtime role can be tested alone. */
export class StreamWriter {
  readonly redis: Redis;
  readonly names: StreamNames;

  constructor(readonly config: ServerConfig) {
    this.redis = new Redis(config.REDIS_URL);
    this.names = streamNames(config.REDIS_PREFIX, config.POSITION_SHARDS);
  }

  async positions(records: PositionRecord[]): Promise<void> {
    for (const entry of positionEntries(this.names, records)) await this.xadd(entry);
  }

  /** Appends an event envelope to `events:{tenant}`; returns its stream id. */
  async event(tenantId: string, event: EventType, data: Record<string, unknown> = {}, id = String(Math.floor(Math.random() * 1e9))): Promise<string> {
    const envelope = { id, event, tenant_id: tenantId, occurred_at: new Date().toISOString(), data } as EventEnvelope;
    return this.xadd(eventEntry(this.names, envelope));
  }

  private async xadd(entry: AppendRequest): Promise<string> {
    return (await this.redis.xadd(entry.stream, '*', PAYLOAD_FIELD, entry.fields[PAYLOAD_FIELD]!))!;
  }

  close(): Promise<unknown> {
    return this.redis.quit();
  }
}

/** A stable uuid named after a label (`uuidFor('asset-a')`): stream records carry uuids, tests read better with names. */
export function uuidFor(label: string): string {
  const hex = createHash('sha1').update(label).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

let positionId = 0;

export function position(tenantId: string, deviceId: string, assetId: string | null, lat: number, lon: number, extra: Partial<PositionRecord> = {}): PositionRecord {
  return {
    id: String(++positionId),
    tenant_id: tenantId,
    device_id: deviceId,
    asset_id: assetId,
    ts_ms: Date.UTC(2025, 0, 15, 8, 30, 0) + positionId,
    lat,
    lon,
    speed_mps: 12.5,
    heading_deg: 270,
    accuracy_m: 4,
    altitude_m: null,
    battery_pct: 80,
    seq: positionId,
    ...extra,
  };
}

export async function adminUserId(owner: pg.Pool, org: TestOrg): Promise<string> {
  return asTenant(owner, org.id, async (db) => (await db.query<{ id: string }>('select id from users where tenant_id = $1 limit 1', [org.id])).rows[0]!.id);
}

/** A session token like `POST /v1/auth/token` issues, signed with the deployment's secret. */
export async function sessionToken(config: ServerConfig, owner: pg.Pool, org: TestOrg, scopes = ['live.read', 'events.read'], ttlS = 3600): Promise<string> {
  const userId = await adminUserId(owner, org);
  return sessionTokens(config.jwtSecret).sign({ sub: userId, tid: org.id, role: 'admin', scopes }, ttlS).token;
}

/** An API key stored the way `POST /v1/api-keys` stores one; returns the key. */
export async function apiKey(owner: pg.Pool, org: TestOrg, scopes = ['live.read']): Promise<string> {
  const key = newApiKey(org.id);
  const userId = await adminUserId(owner, org);
  await asTenant(owner, org.id, (db) => db.query(
    'insert into api_keys (tenant_id, user_id, name, prefix, key_hash, scopes) values ($1, $2, $3, $4, $5, $6)',
    [org.id, userId, `key ${randomUUID().slice(0, 6)}`, key.slice(0, 11), sha256(key), scopes],
  ));
  return key;
}

export const liveUrl = (port: number, token: string) => `ws://127.0.0.1:${port}/v1/live?token=${encodeURIComponent(token)}`;
