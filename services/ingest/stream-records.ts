import type { FixMeasurements, PositionRecord, PunchRecord } from '../shared/streams.js';
import type { PositionColumns, PunchRow } from '../../ingest/rows.js';

/**
 * PositionRecord / PunchRecord JSON (services/shared/streams.ts), written field by field: ids are uuids and
 * digits and numbers are finite, so nothing needs escaping, and skipping the intermediate object per fix
 * halves the cost of JSON.stringify on the publishing path. The key order follows the interfaces.
 */
export function positionJson(p: PositionColumns, i: number, id: string): string {
  const asset = p.assetId[i];
  return `{"id":"${id}","tenant_id":"${p.tenantId[i]}","device_id":"${p.deviceId[i]}","asset_id":${asset === null ? 'null' : `"${asset}"`},`
    + `"ts_ms":${p.tsMs[i]},"lat":${p.lat[i]},"lon":${p.lon[i]},"speed_mps":${p.speedMps[i]},"heading_deg":${p.headingDeg[i]},`
    + `"accuracy_m":${p.accuracyM[i]},"altitude_m":${p.altitudeM[i]},"battery_pct":${p.batteryPct[i]},"seq":${p.seq[i]}}`;
}

export function punchJson(row: PunchRow, id: string): string {
  const record: PunchRecord = {
    id,
    tenant_id: row.tenantId,
    device_id: row.deviceId,
    site_id: row.siteId,
    ts_ms: row.tsMs,
    employee_ref: row.employeeRef,
    kind: row.kind,
    lat: row.lat,
    lon: row.lon,
    accuracy_m: row.accuracyM,
  };
  return JSON.stringify(record); // employee_ref is free text: the real serializer escapes it
}

/** A positions row as `stream_gap_positions` returns it (pg types: bigint as string, timestamptz as Date). */
export interface PositionRow extends FixMeasurements {
  id: string;
  tenant_id: string;
  device_id: string;
  asset_id: string | null;
  ts: Date;
  seq: string | null;
}

export interface PunchTableRow {
  id: string;
  tenant_id: string;
  device_id: string;
  site_id: string | null;
  ts: Date;
  employee_ref: string;
  kind: 'in' | 'out';
  lat: number | null;
  lon: number | null;
  accuracy_m: number | null;
}

export function positionRowJson(row: PositionRow): string {
  const record: PositionRecord = {
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
  return JSON.stringify(record);
}

export function punchRowJson(row: PunchTableRow): string {
  const record: PunchRecord = {
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
  return JSON.stringify(record);
}
