import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { decodeGps, decodePunch, TIME_WINDOW } from '../../ingest/decode.js';
import { encodeGpsBatch, encodePunch } from '../../ingest/proto.js';

const limits = { maxBatchFixes: 5, ...TIME_WINDOW };
const DAY_MS = 24 * 3600_000;
const now = 1_800_000_000_000;

describe('decodeGps', () => {
  it('drops bad fixes one by one and keeps the rest', () => {
    const sut = decodeGps(encodeGpsBatch({ fixes: [
      { ts_ms: now - 1, lat: 1, lon: 2, speed_mps: NaN },
      { ts_ms: now, lat: NaN, lon: 2 },
      { ts_ms: now, lat: 1, lon: -181 },
      { ts_ms: now + TIME_WINDOW.maxFutureMs + 1, lat: 1, lon: 2 },
      { lat: 1, lon: 2 },
    ] }), 'protobuf', limits, now);
    expect(sut).toEqual({
      ok: true,
      fixes: [{ tsMs: now - 1, lat: 1, lon: 2, speedMps: null, headingDeg: 0, accuracyM: 0, altitudeM: 0, batteryPct: 0, seq: 0 }],
      rejected: [{ index: 1, reason: 'invalid_lat' }, { index: 2, reason: 'invalid_lon' }, { index: 3, reason: 'ts_in_future' }, { index: 4, reason: 'invalid_ts' }],
    });
  });

  it('keeps to the time window: at most 10 minutes ahead, no older than the positions\' retention (90 days)', () => {
    const at = (tsMs: number) => decodeGps(encodeGpsBatch({ fixes: [{ ts_ms: tsMs, lat: 1, lon: 2 }] }), 'protobuf', limits, now);
    expect(at(now + 9 * 60_000)).toMatchObject({ ok: true, rejected: [] });
    expect(at(now + 10 * 60_000 + 1)).toMatchObject({ ok: true, fixes: [], rejected: [{ index: 0, reason: 'ts_in_future' }] });
    expect(at(now + 2 * 3600_000)).toMatchObject({ ok: true, fixes: [], rejected: [{ index: 0, reason: 'ts_in_future' }] });
    expect(at(now - 89 * DAY_MS)).toMatchObject({ ok: true, rejected: [] });
    expect(at(now - 91 * DAY_MS)).toMatchObject({ ok: true, fixes: [], rejected: [{ index: 0, reason: 'ts_too_old' }] });
    expect(at(1)).toMatchObject({ ok: true, fixes: [], rejected: [{ index: 0, reason: 'ts_too_old' }] });
    const punchAt = (tsMs: number) => decodePunch(Buffer.from(JSON.stringify({ ts_ms: tsMs, employee_id: 'B-1', kind: 'in' })), 'json', limits, now);
    expect(punchAt(1)).toEqual({ ok: false, reason: 'ts_too_old' });
    expect(punchAt(now - 200 * DAY_MS)).toMatchObject({ ok: true }); // punches are kept 400 days
    expect(punchAt(now + 11 * 60_000)).toEqual({ ok: false, reason: 'ts_in_future' });
  });

  it('limits a JSON batch by its number of fixes, not by the protobuf byte bound', () => {
    const jsonLimits = { ...limits, maxBatchFixes: 500 };
    const verbose = (n: number) => Buffer.from(JSON.stringify({ fixes: Array.from({ length: n }, (_, i) => ({
      ts_ms: now - i * 1000, lat: 52.520008123456, lon: 13.404954123456, speed_mps: 4.51234, heading_deg: 90.12345,
      accuracy_m: 5.12345, altitude_m: 34.12345, battery_pct: 88.12345, seq: 4_000_000_000 + i })) }));
    for (const n of [300, 379, 500]) expect(decodeGps(verbose(n), 'json', jsonLimits, now)).toMatchObject({ ok: true, rejected: [] });
    expect(decodeGps(verbose(501), 'json', jsonLimits, now)).toEqual({ ok: false, reason: 'batch_too_large' });
  });

  it('refuses a whole batch that is undecodable, empty or too large', () => {
    expect(decodeGps(Buffer.from([0x0a, 0x09, 0x01]), 'protobuf', limits, now)).toEqual({ ok: false, reason: 'undecodable' });
    expect(decodeGps(Buffer.alloc(0), 'protobuf', limits, now)).toEqual({ ok: false, reason: 'empty_batch' });
    const six = encodeGpsBatch({ fixes: Array.from({ length: 6 }, (_, i) => ({ ts_ms: now - i, lat: 1, lon: 1 })) });
    expect(decodeGps(six, 'protobuf', limits, now)).toEqual({ ok: false, reason: 'batch_too_large' });
    expect(decodeGps(Buffer.from('{"fixes": 3}'), 'json', limits, now)).toEqual({ ok: false, reason: 'undecodable' });
  });

  it('reads JSON with the contract\'s names, int64 as a string too, and a bare fix as a batch of one', () => {
    const sut = decodeGps(Buffer.from(JSON.stringify({ ts_ms: String(now), lat: 10, lon: 20, battery_pct: 80 })), 'json', limits, now);
    expect(sut).toMatchObject({ ok: true, fixes: [{ tsMs: now, lat: 10, lon: 20, batteryPct: 80, speedMps: null, seq: null }] });
  });
});

describe('decodePunch', () => {
  it('reads kind and employee, and refuses a punch without them', () => {
    expect(decodePunch(encodePunch({ ts_ms: now, employee_id: ' B-1 ', kind: 2 }), 'protobuf', limits, now))
      .toEqual({ ok: true, punch: { tsMs: now, employeeRef: 'B-1', kind: 'out', lat: null, lon: null, accuracyM: 0 } });
    expect(decodePunch(encodePunch({ ts_ms: now, kind: 1 }), 'protobuf', limits, now)).toEqual({ ok: false, reason: 'missing_employee_id' });
    expect(decodePunch(Buffer.from('{"ts_ms":1,"employee_id":"x","kind":"sideways"}'), 'json', limits, now)).toEqual({ ok: false, reason: 'invalid_kind' });
  });
});

describe('proto/gen/telemetry.json', () => {
  it('matches proto/fieldops/v1/telemetry.proto (run `npm run proto:gen` after changing the .proto)', () => {
    const fromProto = new protobuf.Root().loadSync('proto/fieldops/v1/telemetry.proto', { keepCase: true }).toJSON();
    const generated = JSON.parse(readFileSync('proto/gen/telemetry.json', 'utf8'));
    expect(protobuf.Root.fromJSON(generated).toJSON()).toEqual(fromProto);
  });
});
