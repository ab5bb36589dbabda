import type { StreamEntry } from '../shared/bus.js';
import type { Logger } from '../shared/log.js';
import { PAYLOAD_FIELD, type PositionRecord, type PunchRecord } from '../shared/streams.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isUuid = (v: unknown) => typeof v === 'string' && UUID.test(v);
const isCoordinate = (v: unknown, max: number) => typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= max;

/** What evaluation and the events table rely on; ingest checks all of it, so a failure means a foreign writer. */
export function isPositionRecord(r: PositionRecord): boolean {
  return isUuid(r.tenant_id) && isUuid(r.device_id) && (r.asset_id === null || isUuid(r.asset_id))
    && Number.isFinite(r.ts_ms) && isCoordinate(r.lat, 90) && isCoordinate(r.lon, 180);
}

export function isPunchRecord(r: PunchRecord): boolean {
  return isUuid(r.tenant_id) && isUuid(r.device_id) && (r.site_id === null || isUuid(r.site_id)) && /^\d+$/.test(String(r.id))
    && Number.isFinite(r.ts_ms) && (r.kind === 'in' || r.kind === 'out') && typeof r.employee_ref === 'string';
}

/**
 * The records of stream entries (field `p`: a JSON array of records), in entry order. An entry or a
 * record that cannot be read is logged and skipped — acknowledged with its batch, not retried forever,
 * so that it cannot stall its shard.
 */
export function recordsOf<T>(entries: StreamEntry[], log: Logger, isValid: (record: T) => boolean): T[] {
  const records: T[] = [];
  for (const entry of entries) {
    try {
      const parsed = JSON.parse(entry.fields[PAYLOAD_FIELD] ?? '[]') as unknown;
      if (!Array.isArray(parsed)) {
        log.warn({ entry_id: entry.id }, 'stream entry payload is not an array; skipped');
        continue;
      }
      for (const record of parsed as T[]) {
        if (typeof record === 'object' && record !== null && isValid(record)) records.push(record);
        else log.warn({ entry_id: entry.id }, 'malformed record in stream entry; skipped');
      }
    } catch {
      log.warn({ entry_id: entry.id }, 'unreadable stream entry; skipped');
    }
  }
  return records;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
