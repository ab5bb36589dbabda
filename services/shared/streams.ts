/**
 * The Redis streams between tiers (DESIGN section 2) and the records they carry. Producers and
 * consumers import these, so that a field is named in one place.
 */

/** What a fix measured, named as in the device contract and the `positions` table. */
export interface FixMeasurements {
  lat: number;
  lon: number;
  speed_mps: number | null;
  heading_deg: number | null;
  accuracy_m: number | null;
  altitude_m: number | null;
  battery_pct: number | null;
}

/** One committed fix as it travels on `positions:{shard}`. Times are Unix ms. */
export interface PositionRecord extends FixMeasurements {
  /** positions.id of the committed row. */
  id: string;
  tenant_id: string;
  device_id: string;
  asset_id: string | null;
  ts_ms: number;
  seq: number | null;
}

/** One committed punch as it travels on `punches`. */
export interface PunchRecord {
  id: string;
  tenant_id: string;
  device_id: string;
  site_id: string | null;
  ts_ms: number;
  employee_ref: string;
  kind: 'in' | 'out';
  lat: number | null;
  lon: number | null;
  accuracy_m: number | null;
}

/** The event envelope of DESIGN section 7, as written to `events:{tenant}` and to webhooks. */
export interface EventEnvelope<T = Record<string, unknown>> {
  id: string;
  event: string;
  tenant_id: string;
  occurred_at: string;
  data: T;
}

/** The field of a stream entry that holds its JSON payload (an array of records, or one envelope). */
export const PAYLOAD_FIELD = 'p';

export interface StreamNames {
  positionShard(shard: number): string;
  allPositionShards(): string[];
  punches: string;
  events(tenantId: string): string;
  /** Shard of a fix: by asset when linked, else by device, so one owner sees an asset's fixes in order. */
  shardOf(assetOrDeviceId: string): number;
}

export function streamNames(prefix: string, shards: number): StreamNames {
  return {
    positionShard: (shard) => `${prefix}positions:${shard}`,
    allPositionShards: () => Array.from({ length: shards }, (_, i) => `${prefix}positions:${i}`),
    punches: `${prefix}punches`,
    events: (tenantId) => `${prefix}events:${tenantId}`,
    shardOf: (key) => fnv1a(key) % shards,
  };
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
