import type { PunchKind } from '../services/shared/contracts/domain.js';
import {
  GpsBatchType, PunchType, PunchKindValue, int64ToNumber,
  type GpsBatchMessage, type GpsFixMessage, type PunchMessage,
} from './proto.js';

/** Why a message or a fix was refused; the `reason` label of `fieldops_ingest_rejected_total`. */
export type RejectReason =
  | 'undecodable'
  | 'empty_batch'
  | 'batch_too_large'
  | 'invalid_lat'
  | 'invalid_lon'
  | 'invalid_ts'
  | 'ts_in_future'
  | 'ts_too_old'
  | 'missing_employee_id'
  | 'invalid_kind'
  | 'unauthorized_topic'
  | 'packet_too_large'
  | 'db_rejected';

export type PayloadFormat = 'protobuf' | 'json';

/** A validated fix. Optional measurements are null when the device did not send them (JSON) or sent NaN. */
export interface Fix {
  tsMs: number;
  lat: number;
  lon: number;
  speedMps: number | null;
  headingDeg: number | null;
  accuracyM: number | null;
  altitudeM: number | null;
  batteryPct: number | null;
  seq: number | null;
}

export interface Punch {
  tsMs: number;
  employeeRef: string;
  kind: PunchKind;
  lat: number | null;
  lon: number | null;
  accuracyM: number | null;
}

export interface FixRejection {
  index: number;
  reason: RejectReason;
}

/**
 * A batch is refused whole only when it cannot be read (undecodable, empty, over the size limit); otherwise each
 * bad fix is dropped on its own and the good ones around it are kept (docs/design.md, "Device contract").
 */
export type GpsDecodeResult =
  | { ok: true; fixes: Fix[]; rejected: FixRejection[] }
  | { ok: false; reason: RejectReason };

export type PunchDecodeResult = { ok: true; punch: Punch } | { ok: false; reason: RejectReason };

export interface DecodeLimits {
  maxBatchFixes: number;
  /** Fixes and punches stamped later than now + this are refused as `ts_in_future`. */
  maxFutureMs: number;
  /** Fixes stamped earlier than now − this are refused as `ts_too_old`: the positions' retention. */
  maxFixAgeMs: number;
  /** Punches stamped earlier than now − this are refused as `ts_too_old`: the punches' retention. */
  maxPunchAgeMs: number;
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * The time window of the device contract (docs/design.md, "Device contract"): at most 10 minutes ahead of the
 * server clock (a fix from the future would freeze geofence evaluation and the last position until the clock
 * caught up), and no older than the table's retention (migration 001: positions 90 days, punches 400), which
 * would only be dropped again.
 */
export const TIME_WINDOW = { maxFutureMs: 10 * 60_000, maxFixAgeMs: 90 * DAY_MS, maxPunchAgeMs: 400 * DAY_MS } as const;

// The largest a GpsFix can encode to (every field at its widest), so a payload too big to hold the allowed
// number of fixes is refused before it is decoded.
const MAX_ENCODED_FIX_BYTES = 64;
// The same bound for JSON, which spells every field name and number out: a fix with every field at full
// precision is ~250 bytes; 1 KiB leaves room for whitespace. The transport's own limit (MQTT_MAX_PACKET_BYTES,
// the HTTP and WebSocket body limits) is usually the tighter one.
const MAX_JSON_FIX_BYTES = 1024;
// Anything outside float32 would fail the `real` columns and with them the whole batch's statement.
const FLOAT32_MAX = 3.4028234663852886e38;

/** The largest payload that can hold `maxFixes` fixes in this encoding: the byte bound of a batch, transports' included. */
export function maxBatchBytes(maxFixes: number, format: PayloadFormat): number {
  return format === 'protobuf' ? maxFixes * MAX_ENCODED_FIX_BYTES + 16 : maxFixes * MAX_JSON_FIX_BYTES + 4096;
}

export function decodeGps(payload: Uint8Array, format: PayloadFormat, limits: DecodeLimits, nowMs: number): GpsDecodeResult {
  if (payload.length > maxBatchBytes(limits.maxBatchFixes, format)) return { ok: false, reason: 'batch_too_large' };
  let raw: unknown[];
  if (format === 'protobuf') {
    let batch: GpsBatchMessage;
    try {
      batch = GpsBatchType.decode(payload) as unknown as GpsBatchMessage;
    } catch {
      return { ok: false, reason: 'undecodable' };
    }
    raw = batch.fixes;
  } else {
    const parsed = parseJson(payload);
    if (parsed === undefined || parsed === null || typeof parsed !== 'object') return { ok: false, reason: 'undecodable' };
    const fixes = (parsed as { fixes?: unknown }).fixes;
    // A bare fix object is a batch of one, as on the protobuf topic.
    raw = Array.isArray(fixes) ? fixes : fixes === undefined && 'lat' in parsed ? [parsed] : [];
    if (fixes !== undefined && !Array.isArray(fixes)) return { ok: false, reason: 'undecodable' };
  }
  if (raw.length === 0) return { ok: false, reason: 'empty_batch' };
  if (raw.length > limits.maxBatchFixes) return { ok: false, reason: 'batch_too_large' };

  const fixes: Fix[] = [];
  let rejected: FixRejection[] | null = null;
  const latestMs = nowMs + limits.maxFutureMs;
  const earliestMs = nowMs - limits.maxFixAgeMs;
  for (let i = 0; i < raw.length; i++) {
    const item = raw[i];
    const fix = format === 'protobuf' ? fromProtobuf(item as GpsFixMessage) : fromJson(item);
    const reason = fix === null ? 'undecodable' : checkFix(fix, earliestMs, latestMs);
    if (reason === null) fixes.push(fix!);
    else (rejected ??= []).push({ index: i, reason });
  }
  return { ok: true, fixes, rejected: rejected ?? NO_REJECTIONS };
}

const NO_REJECTIONS: FixRejection[] = Object.freeze([]) as unknown as FixRejection[];

function checkFix(fix: Fix, earliestMs: number, latestMs: number): RejectReason | null {
  // Comparisons written so that NaN fails them.
  if (!(fix.lat >= -90 && fix.lat <= 90)) return 'invalid_lat';
  if (!(fix.lon >= -180 && fix.lon <= 180)) return 'invalid_lon';
  return checkTime(fix.tsMs, earliestMs, latestMs);
}

function checkTime(tsMs: number, earliestMs: number, latestMs: number): RejectReason | null {
  if (!(tsMs > 0) || !Number.isSafeInteger(tsMs)) return 'invalid_ts';
  if (tsMs > latestMs) return 'ts_in_future';
  if (tsMs < earliestMs) return 'ts_too_old';
  return null;
}

function fromProtobuf(m: GpsFixMessage): Fix {
  return {
    tsMs: int64ToNumber(m.ts_ms),
    lat: m.lat,
    lon: m.lon,
    speedMps: measurement(m.speed_mps),
    headingDeg: measurement(m.heading_deg),
    accuracyM: measurement(m.accuracy_m),
    altitudeM: measurement(m.altitude_m),
    batteryPct: measurement(m.battery_pct),
    seq: m.seq,
  };
}

function fromJson(item: unknown): Fix | null {
  if (item === null || typeof item !== 'object') return null;
  const o = item as Record<string, unknown>;
  return {
    tsMs: jsonInteger(o.ts_ms ?? o.tsMs),
    lat: typeof o.lat === 'number' ? o.lat : NaN,
    lon: typeof o.lon === 'number' ? o.lon : NaN,
    speedMps: measurement(o.speed_mps ?? o.speedMps),
    headingDeg: measurement(o.heading_deg ?? o.headingDeg),
    accuracyM: measurement(o.accuracy_m ?? o.accuracyM),
    altitudeM: measurement(o.altitude_m ?? o.altitudeM),
    batteryPct: measurement(o.battery_pct ?? o.batteryPct),
    seq: jsonSeq(o.seq),
  };
}

/** A measurement the device may omit: NaN, infinities and non-numbers are stored as null, not refused. */
function measurement(value: unknown): number | null {
  return typeof value === 'number' && value >= -FLOAT32_MAX && value <= FLOAT32_MAX ? value : null;
}

/** proto3 JSON writes int64 as a string; accept both. */
function jsonInteger(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^-?\d{1,16}$/.test(value)) return Number(value);
  return NaN;
}

function jsonSeq(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff ? value : null;
}

function parseJson(payload: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
}

export function decodePunch(payload: Uint8Array, format: PayloadFormat, limits: DecodeLimits, nowMs: number): PunchDecodeResult {
  if (payload.length > 4096) return { ok: false, reason: 'undecodable' };
  let tsMs: number;
  let employeeRef: unknown;
  let kind: 'in' | 'out' | null;
  let lat: number | null;
  let lon: number | null;
  let accuracyM: number | null;
  if (format === 'protobuf') {
    let m: PunchMessage;
    try {
      m = PunchType.decode(payload) as unknown as PunchMessage;
    } catch {
      return { ok: false, reason: 'undecodable' };
    }
    tsMs = int64ToNumber(m.ts_ms);
    employeeRef = m.employee_id;
    kind = m.kind === PunchKindValue.IN ? 'in' : m.kind === PunchKindValue.OUT ? 'out' : null;
    // proto3 cannot tell an absent position from (0, 0), which no attendance clock stands on: read it as absent.
    const hasPosition = m.lat !== 0 || m.lon !== 0;
    lat = hasPosition ? m.lat : null;
    lon = hasPosition ? m.lon : null;
    accuracyM = measurement(m.accuracy_m);
  } else {
    const o = parseJson(payload);
    if (o === null || typeof o !== 'object' || Array.isArray(o)) return { ok: false, reason: 'undecodable' };
    const p = o as Record<string, unknown>;
    tsMs = jsonInteger(p.ts_ms ?? p.tsMs);
    employeeRef = p.employee_id ?? p.employeeId;
    kind = jsonPunchKind(p.kind);
    lat = p.lat === undefined || p.lat === null ? null : typeof p.lat === 'number' ? p.lat : NaN;
    lon = p.lon === undefined || p.lon === null ? null : typeof p.lon === 'number' ? p.lon : NaN;
    accuracyM = measurement(p.accuracy_m ?? p.accuracyM);
  }
  if (typeof employeeRef !== 'string' || employeeRef.trim() === '' || employeeRef.length > 200) {
    return { ok: false, reason: 'missing_employee_id' };
  }
  if (kind === null) return { ok: false, reason: 'invalid_kind' };
  if (lat !== null && !(lat >= -90 && lat <= 90)) return { ok: false, reason: 'invalid_lat' };
  if (lon !== null && !(lon >= -180 && lon <= 180)) return { ok: false, reason: 'invalid_lon' };
  if ((lat === null) !== (lon === null)) return { ok: false, reason: lat === null ? 'invalid_lat' : 'invalid_lon' };
  const timeRefused = checkTime(tsMs, nowMs - limits.maxPunchAgeMs, nowMs + limits.maxFutureMs);
  if (timeRefused) return { ok: false, reason: timeRefused };
  return { ok: true, punch: { tsMs, employeeRef: employeeRef.trim(), kind, lat, lon, accuracyM } };
}

function jsonPunchKind(value: unknown): 'in' | 'out' | null {
  switch (value) {
    case 'in': case 'IN': case 'PUNCH_KIND_IN': case PunchKindValue.IN: return 'in';
    case 'out': case 'OUT': case 'PUNCH_KIND_OUT': case PunchKindValue.OUT: return 'out';
    default: return null;
  }
}
