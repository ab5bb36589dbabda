import type { AppendRequest, StreamEntry } from '../bus.js';
import type { Logger } from '../log.js';
import type { PunchKind } from './domain.js';
import type { EventEnvelope } from './events.js';

/**
 * The Redis streams between roles (docs/design.md, "Streams"): their names, the shard key, the records
 * they carry, and the one encoder and validating decoder of each entry kind. Ingest and the outbox relay
 * write with it; the geofence and realtime roles read with it; tests and benches use it too, so a change
 * to the format breaks the build rather than a consumer in production.
 *
 * - `positions:{n}`: entries whose field `p` is a JSON array of PositionRecord (at most RECORDS_PER_ENTRY);
 *   a fix goes to shard `shardOf(shardKey(asset_id, device_id))`, so one consumer sees an asset's fixes in order.
 * - `punches`: the same with PunchRecord (one stream: punches carry no order).
 * - `events:{tenant}`: one EventEnvelope (JSON) per entry, field `p`.
 */

/** The field of a stream entry that holds its JSON payload. */
export const PAYLOAD_FIELD = 'p';

/** Records per `positions`/`punches` entry: bounds one entry (and a consumer's parse of it). */
export const RECORDS_PER_ENTRY = 500;

export interface StreamNames {
  positionShard(shard: number): string;
  allPositionShards(): string[];
  punches: string;
  events(tenantId: string): string;
  /** The shard of a shard key (see `shardKey`). */
  shardOf(key: string): number;
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

/**
 * What a fix is ordered, sharded, conflated and filtered by: its asset when the device is linked to one,
 * else the device (whose fixes then stand for an asset of their own).
 */
export const shardKey = (assetId: string | null, deviceId: string): string => assetId ?? deviceId;

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

// Records

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
  /** punches.id of the committed row. */
  id: string;
  tenant_id: string;
  device_id: string;
  site_id: string | null;
  ts_ms: number;
  employee_ref: string;
  kind: PunchKind;
  lat: number | null;
  lon: number | null;
  accuracy_m: number | null;
}

// Encoding

/**
 * Positions held column by column (ingest's batch shape). `encodePositionAt` writes record `i` from them
 * without building a PositionRecord first.
 */
export interface PositionColumnsView {
  readonly tenantId: readonly string[];
  readonly deviceId: readonly string[];
  readonly assetId: readonly (string | null)[];
  readonly tsMs: readonly number[];
  readonly lat: readonly number[];
  readonly lon: readonly number[];
  readonly speedMps: readonly (number | null)[];
  readonly headingDeg: readonly (number | null)[];
  readonly accuracyM: readonly (number | null)[];
  readonly altitudeM: readonly (number | null)[];
  readonly batteryPct: readonly (number | null)[];
  readonly seq: readonly (number | null)[];
}

/**
 * PositionRecord JSON written field by field: ids are uuids and digits, numbers are finite (ingest validated
 * them), so nothing needs escaping; skipping the intermediate object per fix halves the cost of JSON.stringify
 * on the publishing path. Key order and output equal `encodePosition` (a unit test holds them together).
 */
export function encodePositionAt(p: PositionColumnsView, i: number, id: string): string {
  const asset = p.assetId[i];
  return `{"id":"${id}","tenant_id":"${p.tenantId[i]}","device_id":"${p.deviceId[i]}","asset_id":${asset === null || asset === undefined ? 'null' : `"${asset}"`},`
    + `"ts_ms":${p.tsMs[i]},"lat":${p.lat[i]},"lon":${p.lon[i]},"speed_mps":${p.speedMps[i]},"heading_deg":${p.headingDeg[i]},`
    + `"accuracy_m":${p.accuracyM[i]},"altitude_m":${p.altitudeM[i]},"battery_pct":${p.batteryPct[i]},"seq":${p.seq[i]}}`;
}

export function encodePosition(r: PositionRecord): string {
  const record: PositionRecord = {
    id: r.id, tenant_id: r.tenant_id, device_id: r.device_id, asset_id: r.asset_id, ts_ms: r.ts_ms,
    lat: r.lat, lon: r.lon, speed_mps: r.speed_mps, heading_deg: r.heading_deg, accuracy_m: r.accuracy_m,
    altitude_m: r.altitude_m, battery_pct: r.battery_pct, seq: r.seq,
  };
  return JSON.stringify(record);
}

export function encodePunch(r: PunchRecord): string {
  const record: PunchRecord = {
    id: r.id, tenant_id: r.tenant_id, device_id: r.device_id, site_id: r.site_id, ts_ms: r.ts_ms,
    employee_ref: r.employee_ref, kind: r.kind, lat: r.lat, lon: r.lon, accuracy_m: r.accuracy_m,
  };
  return JSON.stringify(record); // employee_ref is free text: the real serializer escapes it
}

/** Entries of encoded records for one stream, RECORDS_PER_ENTRY at most each. */
export function recordEntries(stream: string, encoded: readonly string[], maxLen?: number): AppendRequest[] {
  const entries: AppendRequest[] = [];
  for (let i = 0; i < encoded.length; i += RECORDS_PER_ENTRY) {
    entries.push({ stream, maxLen, fields: { [PAYLOAD_FIELD]: `[${encoded.slice(i, i + RECORDS_PER_ENTRY).join(',')}]` } });
  }
  return entries;
}

/** Collects encoded positions by shard, then turns them into entries: records keep their order within a shard. */
export class PositionEntries {
  private readonly byShard = new Map<number, string[]>();

  constructor(private readonly streams: StreamNames, private readonly maxLen?: number) {}

  /** A record encoded already (`encodePositionAt`), with the two fields of its shard key. */
  add(assetId: string | null, deviceId: string, encoded: string): void {
    const shard = this.streams.shardOf(shardKey(assetId, deviceId));
    let list = this.byShard.get(shard);
    if (!list) this.byShard.set(shard, (list = []));
    list.push(encoded);
  }

  addRecord(record: PositionRecord): void {
    this.add(record.asset_id, record.device_id, encodePosition(record));
  }

  entries(): AppendRequest[] {
    const entries: AppendRequest[] = [];
    for (const [shard, encoded] of this.byShard) entries.push(...recordEntries(this.streams.positionShard(shard), encoded, this.maxLen));
    return entries;
  }
}

/** Entries for `positions:{n}` holding these records, grouped by shard. */
export function positionEntries(streams: StreamNames, records: readonly PositionRecord[], maxLen?: number): AppendRequest[] {
  const builder = new PositionEntries(streams, maxLen);
  for (const record of records) builder.addRecord(record);
  return builder.entries();
}

/** Entries for `punches` holding these records. */
export function punchEntries(streams: StreamNames, records: readonly PunchRecord[], maxLen?: number): AppendRequest[] {
  return recordEntries(streams.punches, records.map(encodePunch), maxLen);
}

export function encodeEvent(envelope: EventEnvelope): string {
  const { id, event, tenant_id, occurred_at, data } = envelope;
  return JSON.stringify({ id, event, tenant_id, occurred_at, data });
}

/** The `events:{tenant}` entry of one event. */
export function eventEntry(streams: StreamNames, envelope: EventEnvelope): AppendRequest {
  return { stream: streams.events(envelope.tenant_id), fields: { [PAYLOAD_FIELD]: encodeEvent(envelope) } };
}

// Decoding

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isUuid = (v: unknown) => typeof v === 'string' && UUID.test(v);
const isCoordinate = (v: unknown, max: number) => typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= max;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What consumers rely on (evaluation, the events table, the live map); ingest checks all of it, so a failure means a foreign writer. */
export function isPositionRecord(value: unknown): value is PositionRecord {
  if (!isObject(value)) return false;
  const r = value as unknown as PositionRecord;
  return isUuid(r.tenant_id) && isUuid(r.device_id) && (r.asset_id === null || isUuid(r.asset_id))
    && Number.isFinite(r.ts_ms) && isCoordinate(r.lat, 90) && isCoordinate(r.lon, 180);
}

export function isPunchRecord(value: unknown): value is PunchRecord {
  if (!isObject(value)) return false;
  const r = value as unknown as PunchRecord;
  return isUuid(r.tenant_id) && isUuid(r.device_id) && (r.site_id === null || isUuid(r.site_id)) && /^\d+$/.test(String(r.id))
    && Number.isFinite(r.ts_ms) && (r.kind === 'in' || r.kind === 'out') && typeof r.employee_ref === 'string';
}

/** Why an entry or a record was skipped; the decoders report it and go on. */
export type DecodeProblem = 'unreadable entry' | 'payload is not an array' | 'malformed record';

export type OnMalformed = (entryId: string, problem: DecodeProblem) => void;

/** Reports each skipped entry or record as a warning. */
export const warnMalformed = (log: Logger): OnMalformed => (entryId, problem) =>
  log.warn({ entry_id: entryId, problem }, 'stream entry or record skipped: it does not match the stream contract');

/**
 * The valid records of `positions`/`punches` entries, in entry order. An entry or a record that cannot be
 * read is reported and skipped — a consumer acknowledges it with its batch rather than retrying it forever,
 * so that it cannot stall its stream.
 */
function decodeRecords<T>(entries: readonly StreamEntry[], isValid: (v: unknown) => v is T, onMalformed?: OnMalformed): T[] {
  const records: T[] = [];
  for (const entry of entries) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(entry.fields[PAYLOAD_FIELD] ?? '[]');
    } catch {
      onMalformed?.(entry.id, 'unreadable entry');
      continue;
    }
    if (!Array.isArray(parsed)) {
      onMalformed?.(entry.id, 'payload is not an array');
      continue;
    }
    for (const record of parsed) {
      if (isValid(record)) records.push(record);
      else onMalformed?.(entry.id, 'malformed record');
    }
  }
  return records;
}

export const decodePositions = (entries: readonly StreamEntry[], onMalformed?: OnMalformed): PositionRecord[] =>
  decodeRecords(entries, isPositionRecord, onMalformed);

export const decodePunches = (entries: readonly StreamEntry[], onMalformed?: OnMalformed): PunchRecord[] =>
  decodeRecords(entries, isPunchRecord, onMalformed);

/**
 * The envelope of one `events:{tenant}` entry; null when it is not a well-formed envelope belonging to
 * `tenantId` (a stream holds one tenant's events: anything else is a foreign writer's). The type is checked
 * as text only: producers are held to the event map by the compiler, and a reader that dropped a type it
 * does not know yet would lose events silently during a rolling upgrade.
 */
export function decodeEvent(entry: StreamEntry, tenantId: string): EventEnvelope | null {
  const payload = entry.fields[PAYLOAD_FIELD];
  if (!payload) return null;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return null;
  }
  if (!isObject(value)) return null;
  const envelope = value as unknown as EventEnvelope;
  if (envelope.tenant_id !== tenantId || typeof envelope.event !== 'string' || (envelope.event as string) === '' || typeof envelope.occurred_at !== 'string' || !isObject(envelope.data)) {
    return null;
  }
  return envelope;
}
