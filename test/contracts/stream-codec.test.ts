import { describe, expect, it } from 'vitest';
import type { OnMalformed } from '../../services/shared/contracts/stream-codec.js';
import {
  decodeEvent, decodePositions, decodePunches, encodePosition, encodePositionAt, eventEntry, PAYLOAD_FIELD, positionEntries,
  punchEntries, RECORDS_PER_ENTRY, shardKey, streamNames, type PositionRecord, type PunchRecord,
} from '../../services/shared/contracts/stream-codec.js';
import { isEventType, type EventEnvelope } from '../../services/shared/contracts/events.js';
import { PositionColumns } from '../../ingest/rows.js';
import { uuidFor } from '../realtime/fixtures.js';
import { strictly } from '../support/streams.js';

/** The stream contract on its own: what ingest and the relay write is what the geofence and realtime roles read. */

const streams = streamNames('t:', 4);
const tenant = uuidFor('tenant');

const record = (n: number, asset: string | null = `asset-${n % 3}`): PositionRecord => ({
  id: String(1000 + n), tenant_id: tenant, device_id: uuidFor(`device-${n % 5}`), asset_id: asset === null ? null : uuidFor(asset),
  ts_ms: 1_700_000_000_000 + n, lat: 46.5 + n / 1000, lon: -7.25 - n / 1000, speed_mps: n % 2 ? 3.5 : null, heading_deg: 90,
  accuracy_m: n % 3 ? 4 : null, altitude_m: null, battery_pct: 81.5, seq: n % 4 ? n : null,
});

const entryOf = (id: string, payload: string) => ({ id, fields: { [PAYLOAD_FIELD]: payload } });

describe('position entries', () => {
  it('encodes a fix the same way from ingest columns as from a record', () => {
    for (const r of [record(1), record(2, null), record(3)]) {
      const columns = new PositionColumns();
      columns.push({ id: r.device_id, tenantId: r.tenant_id, assetId: r.asset_id, siteId: null }, {
        tsMs: r.ts_ms, lat: r.lat, lon: r.lon, speedMps: r.speed_mps, headingDeg: r.heading_deg, accuracyM: r.accuracy_m,
        altitudeM: r.altitude_m, batteryPct: r.battery_pct, seq: r.seq,
      });
      expect(encodePositionAt(columns, 0, r.id)).toBe(encodePosition(r));
      expect(JSON.parse(encodePositionAt(columns, 0, r.id))).toEqual(r);
    }
  });

  it('puts each fix on the shard of its asset (or device), in order, at most RECORDS_PER_ENTRY to an entry', () => {
    const records = Array.from({ length: 3000 }, (_, n) => record(n, n % 7 === 0 ? null : `asset-${n % 3}`));
    const entries = positionEntries(streams, records);
    expect(entries.length).toBeGreaterThan(4); // some shard needed more than one entry
    expect(Math.max(...entries.map((e) => JSON.parse(e.fields[PAYLOAD_FIELD]!).length))).toBeLessThanOrEqual(RECORDS_PER_ENTRY);
    for (const shard of [0, 1, 2, 3]) {
      const stream = streams.positionShard(shard);
      const decoded = decodePositions(entries.filter((e) => e.stream === stream).map((e, i) => ({ id: `${i}-0`, fields: e.fields })), strictly);
      expect(decoded).toEqual(records.filter((r) => streams.shardOf(shardKey(r.asset_id, r.device_id)) === shard));
    }
  });

  it('skips what does not match the contract, says why, and keeps the rest', () => {
    const problems: [string, string][] = [];
    const report: OnMalformed = (id, problem) => problems.push([id, problem]);
    const good = record(1);
    const decoded = decodePositions([
      entryOf('1-0', 'not json'),
      entryOf('2-0', JSON.stringify({ not: 'an array' })),
      entryOf('3-0', JSON.stringify([good, { ...good, tenant_id: 'nobody' }, { ...good, lat: 91 }, { ...good, asset_id: 7 }, null])),
    ], report);
    expect(decoded).toEqual([good]);
    expect(problems).toEqual([
      ['1-0', 'unreadable entry'], ['2-0', 'payload is not an array'],
      ['3-0', 'malformed record'], ['3-0', 'malformed record'], ['3-0', 'malformed record'], ['3-0', 'malformed record'],
    ]);
  });
});

describe('punch entries', () => {
  it('carry free text as sent', () => {
    const punch: PunchRecord = {
      id: '42', tenant_id: tenant, device_id: uuidFor('clock'), site_id: null, ts_ms: 1_700_000_000_000,
      employee_ref: 'Zoë "the badge" \\ 7\n', kind: 'out', lat: null, lon: null, accuracy_m: null,
    };
    const [entry] = punchEntries(streams, [punch]);
    expect(entry!.stream).toBe('t:punches');
    expect(decodePunches([{ id: '1-0', fields: entry!.fields }], strictly)).toEqual([punch]);
    expect(decodePunches([entryOf('2-0', JSON.stringify([{ ...punch, kind: 'sideways' }]))])).toEqual([]);
  });
});

describe('event entries', () => {
  const envelope: EventEnvelope<'employee.punched_in'> = {
    id: '7', event: 'employee.punched_in', tenant_id: tenant, occurred_at: '2025-05-09T12:00:00.000Z',
    data: {
      employee_id: null, employee_ref: 'B-7', unknown_employee: true, device_id: uuidFor('clock'), kind: 'in', gps_verified: false,
      site_id: null, distance_m: null, lat: null, lon: null, accuracy_m: null, ts: '2025-05-09T12:00:00.000Z', punch_id: '42',
    },
  };

  it("go to the tenant's stream and come back as they were", () => {
    const entry = eventEntry(streams, envelope);
    expect(entry.stream).toBe(`t:events:${tenant}`);
    expect(decodeEvent({ id: '1-0', fields: entry.fields }, tenant)).toEqual(envelope);
  });

  it("are refused when they are not an envelope of the stream's tenant", () => {
    const { fields } = eventEntry(streams, envelope);
    expect(decodeEvent({ id: '1-0', fields }, uuidFor('another tenant'))).toBeNull();
    expect(decodeEvent(entryOf('1-0', '{'), tenant)).toBeNull();
    expect(decodeEvent(entryOf('1-0', JSON.stringify({ ...envelope, data: 'text' })), tenant)).toBeNull();
    expect(decodeEvent(entryOf('1-0', JSON.stringify({ ...envelope, event: 7 })), tenant)).toBeNull();
    expect(decodeEvent({ id: '1-0', fields: {} }, tenant)).toBeNull();
  });

  it('name every type of the event map', () => {
    expect(isEventType('asset.geofence_breach')).toBe(true);
    expect(isEventType('work_order.deleted')).toBe(false);
  });
});
