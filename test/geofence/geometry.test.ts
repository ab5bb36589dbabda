import { describe, expect, it } from 'vitest';
import { newAssetState, parseAssetState, serializeAssetState } from '../../services/geofence/asset-state.js';
import { evaluateFix, type Transition } from '../../services/geofence/fence-evaluator.js';
import { MAX_FENCE_VERTICES, validateFenceShape } from '../../services/shared/geofence/fence-geometry.js';
import { FenceIndex } from '../../services/geofence/fence-index.js';
import { compileSchedule, validateSchedule } from '../../services/shared/geofence/fence-schedule.js';
import { compileFence, Side, type FenceRow } from '../../services/shared/geofence/fence-shapes.js';
import type { PositionRecord } from '../../services/shared/contracts/stream-codec.js';
import { square } from './harness.js';

const issuesOf = (geometry: unknown, radius?: unknown, width?: unknown) => {
  const result = validateFenceShape(geometry, radius, width);
  return result.ok ? [] : result.issues;
};

const row = (fields: Partial<FenceRow> & Pick<FenceRow, 'geometry'>): FenceRow => ({
  id: 'f1', tenant_id: 't1', name: 'f', kind: 'zone', radius_m: null, width_m: null, confirm_fixes: 3, schedule: null, asset_filter: null, ...fields,
});

describe('fence shape validation', () => {
  it('accepts every shape and keeps [lon, lat] only', () => {
    const polygon = validateFenceShape({ type: 'Polygon', coordinates: [square(2, 48, 0.01).map(([x, y]) => [x, y, 35])] }, undefined, undefined);
    expect(polygon.ok && (polygon.shape.geometry.coordinates as number[][][])[0]![0]).toEqual([1.99, 47.99]);
    expect(validateFenceShape({ type: 'MultiPolygon', coordinates: [[square(2, 48, 0.01)], [square(3, 48, 0.01)]] }, null, null).ok).toBe(true);
    expect(validateFenceShape({ type: 'Point', coordinates: [2, 48] }, 150, undefined)).toEqual({ ok: true, shape: { geometry: { type: 'Point', coordinates: [2, 48] }, radius_m: 150, width_m: null } });
    expect(validateFenceShape({ type: 'LineString', coordinates: [[2, 48], [2.1, 48.1]] }, undefined, 40).ok).toBe(true);
  });

  it('rejects unclosed rings, self-intersections, out-of-range coordinates, too many vertices', () => {
    const open = square(2, 48, 0.01).slice(0, 4);
    expect(issuesOf({ type: 'Polygon', coordinates: [open] })).toEqual([{ path: 'geometry.coordinates.0', message: expect.stringContaining('not closed') }]);
    const bowtie = [[0, 0], [2, 2], [2, 0], [0, 1], [0, 0]];
    expect(issuesOf({ type: 'Polygon', coordinates: [bowtie] })).toEqual([{ path: 'geometry.coordinates', message: expect.stringContaining('intersect') }]);
    expect(issuesOf({ type: 'Polygon', coordinates: [[[0, 0], [181, 0], [1, 1], [0, 0]]] })).toEqual([{ path: 'geometry.coordinates.0.1', message: expect.stringContaining('longitude 181') }]);
    expect(issuesOf({ type: 'Point', coordinates: [2, 95] }, 10)).toEqual([{ path: 'geometry.coordinates', message: expect.stringContaining('latitude 95') }]);
    const many = Array.from({ length: MAX_FENCE_VERTICES + 1 }, (_, i) => [Math.cos(i) , Math.sin(i)]);
    expect(issuesOf({ type: 'Polygon', coordinates: [[...many, many[0]]] })).toEqual([{ path: 'geometry.coordinates', message: expect.stringContaining('vertices') }]);
    expect(issuesOf({ type: 'Polygon', coordinates: [[[0, 0], [1, 1], [0, 0], [0, 0]]] })[0]!.message).toContain('3 distinct');
  });

  it('needs radius_m for a circle and width_m for a corridor, and a known type', () => {
    expect(issuesOf({ type: 'Point', coordinates: [2, 48] })).toEqual([{ path: 'radius_m', message: expect.stringContaining('needs radius_m') }]);
    expect(issuesOf({ type: 'Point', coordinates: [2, 48] }, -5)).toEqual([{ path: 'radius_m', message: expect.any(String) }]);
    expect(issuesOf({ type: 'LineString', coordinates: [[2, 48], [2.1, 48]] })).toEqual([{ path: 'width_m', message: expect.stringContaining('needs width_m') }]);
    expect(issuesOf({ type: 'LineString', coordinates: [[2, 48], [2, 48]] }, undefined, 10)[0]!.message).toContain('2 distinct');
    expect(issuesOf({ type: 'GeometryCollection', coordinates: [] })).toEqual([{ path: 'geometry.type', message: expect.stringContaining('Polygon') }]);
    expect(issuesOf('POLYGON((0 0, 1 1))')).toEqual([{ path: 'geometry', message: expect.any(String) }]);
  });
});

describe('schedules', () => {
  it('validates time zone, days and times', () => {
    expect(validateSchedule({ timezone: 'Mars/Olympus', windows: [{ days: [0, 8], start: '25:00', end: '08:00' }] }).map((i) => i.path))
      .toEqual(['schedule.timezone', 'schedule.windows.0.days', 'schedule.windows.0.start']);
    expect(validateSchedule({ timezone: 'UTC', windows: [] })).toEqual([{ path: 'schedule.windows', message: expect.any(String) }]);
    expect(validateSchedule({ timezone: 'Europe/Paris', windows: [{ days: [1], start: '08:00', end: '17:30' }] })).toEqual([]);
  });

  it('follows local time across daylight saving and windows past midnight', () => {
    const day = compileSchedule({ timezone: 'Europe/Paris', windows: [{ days: [7], start: '08:00', end: '09:00' }] })!;
    // Sunday 30 March 2025: Paris moves from UTC+1 to UTC+2 at 01:00 UTC.
    expect(day.isActiveAt(Date.parse('2025-03-30T06:30:00Z'))).toBe(true); // 08:30 local
    expect(day.isActiveAt(Date.parse('2025-03-30T07:30:00Z'))).toBe(false); // 09:30 local
    expect(day.isActiveAt(Date.parse('2025-03-23T07:30:00Z'))).toBe(true); // a week earlier, UTC+1: 08:30
    const night = compileSchedule({ timezone: 'UTC', windows: [{ days: [5], start: '22:00', end: '06:00' }] })!;
    expect(night.isActiveAt(Date.parse('2025-03-07T23:00:00Z'))).toBe(true); // Friday 23:00
    expect(night.isActiveAt(Date.parse('2025-03-08T05:59:00Z'))).toBe(true); // Saturday 05:59
    expect(night.isActiveAt(Date.parse('2025-03-08T06:00:00Z'))).toBe(false);
    expect(night.isActiveAt(Date.parse('2025-03-08T23:00:00Z'))).toBe(false); // Saturday night
  });
});

describe('compiled fences', () => {
  it('a polygon hole is outside; the border is uncertain within the accuracy', () => {
    const fence = compileFence(row({ geometry: { type: 'Polygon', coordinates: [square(2, 48, 0.01), square(2, 48, 0.002).reverse()] } }))!;
    expect(fence.contains(2, 48)).toBe(false);
    expect(fence.contains(2.005, 48)).toBe(true);
    // 0.0001° inside the hole's northern edge is ≈ 11 m from it.
    expect(fence.observe(2, 48.0019, 5)).toBe(Side.Outside);
    expect(fence.observe(2, 48.0019, 20)).toBe(Side.Uncertain);
    // The hole's nearest edges are east and west: 0.002° of longitude at 48° N ≈ 149 m.
    expect(fence.distanceM(2, 48)).toBeCloseTo(149, -1);
  });

  it('circle and corridor boxes hold their whole shape', () => {
    const circle = compileFence(row({ geometry: { type: 'Point', coordinates: [10, 60] }, radius_m: 1000 }))!;
    expect(circle.contains(10, 60.0089)).toBe(true); // 990 m north
    expect(circle.maxLat).toBeGreaterThan(60.0089);
    expect(circle.maxLon - 10).toBeGreaterThan(1000 / (111_195 * Math.cos(60 * Math.PI / 180)));
    const corridor = compileFence(row({ geometry: { type: 'LineString', coordinates: [[10, 60], [10.1, 60]] }, width_m: 200 }))!;
    expect(corridor.contains(10.05, 60.0008)).toBe(true); // ≈ 89 m off the line
    expect(corridor.contains(10.05, 60.001)).toBe(false); // ≈ 111 m
    expect(corridor.minLat).toBeLessThan(60 - 0.00089); // 100 m ≈ 0.0009° of latitude
  });
});

describe('the evaluator core', () => {
  const fix = (lon: number, lat: number, tsMs: number): PositionRecord => ({
    id: '1', tenant_id: 't1', device_id: 'd1', asset_id: 'a1', ts_ms: tsMs, lat, lon, speed_mps: null, heading_deg: null, accuracy_m: 3, altitude_m: null, battery_pct: null, seq: null,
  });

  it('forgets a deleted fence without an event, and its state survives a round trip through Redis\'s form', () => {
    const fence = compileFence(row({ geometry: { type: 'Polygon', coordinates: [square(2, 48, 0.01)] }, confirm_fixes: 1 }))!;
    const state = newAssetState();
    const transitions: Transition[] = [];
    evaluateFix(new FenceIndex([fence]), state, fix(2, 48, 1000), transitions);
    expect(transitions.map((t) => t.entered)).toEqual([true]);
    const restored = parseAssetState(serializeAssetState(state));
    expect(restored).toEqual(state);
    evaluateFix(FenceIndex.empty, restored, fix(2, 48, 2000), transitions);
    expect(transitions).toHaveLength(1);
    expect(restored.inside.size).toBe(0);
  });
});
