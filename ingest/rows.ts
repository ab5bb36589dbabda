import type { Fix, Punch } from './decode.js';

/** Who a row belongs to: always taken from the device record, never from the topic or payload (docs/design.md, "Device contract"). */
export interface DeviceRef {
  readonly id: string;
  readonly tenantId: string;
  readonly assetId: string | null;
  readonly siteId: string | null;
}

/**
 * Positions of one batch, column by column: they go to PostgreSQL as one array per column (`unnest`), so
 * keeping them as columns from the start saves building row objects only to take them apart again.
 */
export class PositionColumns {
  tenantId: string[] = [];
  deviceId: string[] = [];
  assetId: (string | null)[] = [];
  tsMs: number[] = [];
  lat: number[] = [];
  lon: number[] = [];
  speedMps: (number | null)[] = [];
  headingDeg: (number | null)[] = [];
  accuracyM: (number | null)[] = [];
  altitudeM: (number | null)[] = [];
  batteryPct: (number | null)[] = [];
  seq: (number | null)[] = [];

  get length(): number {
    return this.tsMs.length;
  }

  push(device: DeviceRef, fix: Fix): void {
    this.tenantId.push(device.tenantId);
    this.deviceId.push(device.id);
    this.assetId.push(device.assetId);
    this.tsMs.push(fix.tsMs);
    this.lat.push(fix.lat);
    this.lon.push(fix.lon);
    this.speedMps.push(fix.speedMps);
    this.headingDeg.push(fix.headingDeg);
    this.accuracyM.push(fix.accuracyM);
    this.altitudeM.push(fix.altitudeM);
    this.batteryPct.push(fix.batteryPct);
    this.seq.push(fix.seq);
  }

  slice(start: number, end: number): PositionColumns {
    const out = new PositionColumns();
    for (const key of COLUMN_KEYS) (out[key] as unknown[]) = (this[key] as unknown[]).slice(start, end);
    return out;
  }
}

const COLUMN_KEYS = ['tenantId', 'deviceId', 'assetId', 'tsMs', 'lat', 'lon', 'speedMps', 'headingDeg', 'accuracyM',
  'altitudeM', 'batteryPct', 'seq'] as const;

export interface PunchRow extends Punch {
  tenantId: string;
  deviceId: string;
  siteId: string | null;
}
