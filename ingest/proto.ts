import protobuf from 'protobufjs';
import descriptor from '../proto/gen/telemetry.json' with { type: 'json' };

/**
 * The device contract's messages (proto/fieldops/v1/telemetry.proto), by reflection from the descriptor that
 * `npm run proto:gen` writes. protobufjs builds the same decoder code at load time that static generation writes
 * to disk: measured on this machine, 5.1M (reflection) vs 5.0M (static) single-fix decodes/s, so the descriptor
 * wins on simplicity (no generated JS to ship beside the compiled TypeScript).
 */
const root = protobuf.Root.fromJSON(descriptor);

export const GpsFixType = root.lookupType('fieldops.v1.GpsFix');
export const GpsBatchType = root.lookupType('fieldops.v1.GpsBatch');
export const PunchType = root.lookupType('fieldops.v1.Punch');

export const PunchKindValue = { UNSPECIFIED: 0, IN: 1, OUT: 2 } as const;

/** int64 fields decode to `Long` when the `long` package is present, else to numbers. */
export type Int64 = number | { toNumber(): number };

export interface GpsFixMessage {
  ts_ms: Int64;
  lat: number;
  lon: number;
  speed_mps: number;
  heading_deg: number;
  accuracy_m: number;
  altitude_m: number;
  battery_pct: number;
  seq: number;
}

export interface GpsBatchMessage {
  fixes: GpsFixMessage[];
}

export interface PunchMessage {
  ts_ms: Int64;
  employee_id: string;
  kind: number;
  lat: number;
  lon: number;
  accuracy_m: number;
}

export const int64ToNumber = (value: Int64): number => (typeof value === 'number' ? value : value.toNumber());

/** Encoders for devices, tests and the bench generator. */
export function encodeGpsBatch(batch: { fixes: Partial<Omit<GpsFixMessage, 'ts_ms'> & { ts_ms: number }>[] }): Uint8Array {
  return GpsBatchType.encode(GpsBatchType.fromObject(batch)).finish();
}

export function encodePunch(punch: Partial<Omit<PunchMessage, 'ts_ms'> & { ts_ms: number }>): Uint8Array {
  return PunchType.encode(PunchType.fromObject(punch)).finish();
}
