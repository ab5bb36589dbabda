import type { PunchKind } from '../shared/contracts/domain.js';
import type { FixMeasurements, PositionRecord, PunchRecord } from '../shared/contracts/stream-codec.js';

/** A positions row as `stream_gap_positions` returns it (pg types: bigint as string, timestamptz as Date). */
export interface PositionGapRow extends FixMeasurements {
  id: string;
  tenant_id: string;
  device_id: string;
  asset_id: string | null;
  ts: Date;
  seq: string | null;
}

/** A punches row as `stream_gap_punches` returns it. */
export interface PunchGapRow {
  id: string;
  tenant_id: string;
  device_id: string;
  site_id: string | null;
  ts: Date;
  employee_ref: string;
  kind: PunchKind;
  lat: number | null;
  lon: number | null;
  accuracy_m: number | null;
}

/** The stream record of a row replayed from the database (a stream gap's catch-up). */
export function positionOfGapRow(row: PositionGapRow): PositionRecord {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    device_id: row.device_id,
    asset_id: row.asset_id,
    ts_ms: row.ts.getTime(),
    lat: row.lat,
    lon: row.lon,
    speed_mps: row.speed_mps,
    heading_deg: row.heading_deg,
    accuracy_m: row.accuracy_m,
    altitude_m: row.altitude_m,
    battery_pct: row.battery_pct,
    seq: row.seq === null ? null : Number(row.seq),
  };
}

export function punchOfGapRow(row: PunchGapRow): PunchRecord {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    device_id: row.device_id,
    site_id: row.site_id,
    ts_ms: row.ts.getTime(),
    employee_ref: row.employee_ref,
    kind: row.kind,
    lat: row.lat,
    lon: row.lon,
    accuracy_m: row.accuracy_m,
  };
}
