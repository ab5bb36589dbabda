import { kinks } from '@turf/turf';
import type { Issue } from '../contracts/errors.js';

/**
 * Fence geometry as stored (docs/design.md, "REST API"): GeoJSON Polygon or MultiPolygon, a Point with
 * `radius_m` (a circle), or a LineString with `width_m` (a corridor of that full width centred on the line).
 * Validation rejects what would make containment meaningless; normalization keeps [lon, lat] only.
 */
export type LonLat = [number, number];
export type FenceGeometry =
  | { type: 'Polygon'; coordinates: LonLat[][] }
  | { type: 'MultiPolygon'; coordinates: LonLat[][][] }
  | { type: 'Point'; coordinates: LonLat }
  | { type: 'LineString'; coordinates: LonLat[] };

export const FENCE_GEOMETRY_TYPES = ['Polygon', 'MultiPolygon', 'Point', 'LineString'] as const;
// Self-intersection checking is quadratic: 5,000 vertices take about 70 ms, 10,000 about 300 ms.
export const MAX_FENCE_VERTICES = 5_000;
/**
 * Per tenant (docs/design.md, "Reliability and security"): every geofence worker holds a tenant's fences
 * in memory and indexes them, and the index measured ≈ 285k fixes/s at 10,000 fences; past these caps a
 * create (or a geometry change) answers 409.
 */
export const MAX_FENCES_PER_TENANT = 10_000;
export const MAX_FENCE_VERTICES_PER_TENANT = 1_000_000;
export const MAX_RADIUS_M = 100_000;
export const MAX_WIDTH_M = 10_000;

export interface NormalizedShape {
  geometry: FenceGeometry;
  radius_m: number | null;
  width_m: number | null;
}

export type ShapeValidation = { ok: true; shape: NormalizedShape } | { ok: false; issues: Issue[] };

class IssueList {
  readonly issues: Issue[] = [];
  add(path: string, message: string): void {
    if (this.issues.length < 20) this.issues.push({ path, message });
  }
}

/** Validates a fence's shape (geometry plus the radius or width it needs) and returns it normalized. */
export function validateFenceShape(geometry: unknown, radiusM: unknown, widthM: unknown): ShapeValidation {
  const list = new IssueList();
  if (typeof geometry !== 'object' || geometry === null || Array.isArray(geometry)) {
    list.add('geometry', 'must be a GeoJSON geometry object');
    return { ok: false, issues: list.issues };
  }
  const { type, coordinates } = geometry as { type?: unknown; coordinates?: unknown };
  if (!FENCE_GEOMETRY_TYPES.includes(type as (typeof FENCE_GEOMETRY_TYPES)[number])) {
    list.add('geometry.type', `must be one of ${FENCE_GEOMETRY_TYPES.join(', ')}`);
    return { ok: false, issues: list.issues };
  }
  const counter = { vertices: 0 };
  let normalized: FenceGeometry | null = null;
  switch (type) {
    case 'Polygon': {
      const rings = polygon(coordinates, 'geometry.coordinates', list, counter);
      if (rings) normalized = { type, coordinates: rings };
      break;
    }
    case 'MultiPolygon': {
      if (!Array.isArray(coordinates) || coordinates.length === 0) {
        list.add('geometry.coordinates', 'must be a non-empty array of polygons');
        break;
      }
      const polygons = coordinates.map((p, i) => polygon(p, `geometry.coordinates.${i}`, list, counter));
      if (polygons.every((p): p is LonLat[][] => p !== null)) normalized = { type, coordinates: polygons };
      break;
    }
    case 'Point': {
      const point = position(coordinates, 'geometry.coordinates', list);
      if (point) normalized = { type, coordinates: point };
      break;
    }
    case 'LineString': {
      const line = path(coordinates, 'geometry.coordinates', list, counter);
      if (line && distinctCount(line) < 2) list.add('geometry.coordinates', 'a corridor needs at least 2 distinct positions');
      else if (line) normalized = { type, coordinates: line };
      break;
    }
  }
  if (counter.vertices > MAX_FENCE_VERTICES) {
    list.add('geometry.coordinates', `has ${counter.vertices} vertices; at most ${MAX_FENCE_VERTICES} are allowed`);
  }
  const radius = type === 'Point' ? measure(radiusM, 'radius_m', MAX_RADIUS_M, 'a circle (Point) needs radius_m', list) : null;
  const width = type === 'LineString' ? measure(widthM, 'width_m', MAX_WIDTH_M, 'a corridor (LineString) needs width_m', list) : null;
  if (normalized && list.issues.length === 0 && (normalized.type === 'Polygon' || normalized.type === 'MultiPolygon')) {
    // Self-intersections, including a hole crossing its shell, make "inside" ambiguous.
    const crossings = kinks(normalized as never).features;
    if (crossings.length > 0) {
      const [lon, lat] = crossings[0]!.geometry.coordinates;
      list.add('geometry.coordinates', `rings must not intersect themselves or each other (first crossing near ${lon}, ${lat})`);
    }
  }
  if (list.issues.length > 0 || !normalized) return { ok: false, issues: list.issues };
  return { ok: true, shape: { geometry: normalized, radius_m: radius, width_m: width } };
}

function measure(value: unknown, at: string, max: number, missing: string, list: IssueList): number | null {
  if (value === undefined || value === null) {
    list.add(at, missing);
    return null;
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    list.add(at, `must be a number of metres above 0 and at most ${max}`);
    return null;
  }
  return value;
}

function position(value: unknown, at: string, list: IssueList): LonLat | null {
  if (!Array.isArray(value) || value.length < 2 || value.length > 3 || !value.every((n) => typeof n === 'number' && Number.isFinite(n))) {
    list.add(at, 'must be a position [longitude, latitude]');
    return null;
  }
  const [lon, lat] = value as number[];
  let ok = true;
  if (lon! < -180 || lon! > 180) {
    list.add(at, `longitude ${lon} is outside -180..180`);
    ok = false;
  }
  if (lat! < -90 || lat! > 90) {
    list.add(at, `latitude ${lat} is outside -90..90`);
    ok = false;
  }
  return ok ? [lon!, lat!] : null;
}

function path(value: unknown, at: string, list: IssueList, counter: { vertices: number }): LonLat[] | null {
  if (!Array.isArray(value) || value.length < 2) {
    list.add(at, 'must be an array of at least 2 positions');
    return null;
  }
  counter.vertices += value.length;
  if (counter.vertices > MAX_FENCE_VERTICES) return null;
  const positions = value.map((p, i) => position(p, `${at}.${i}`, list));
  return positions.every((p): p is LonLat => p !== null) ? positions : null;
}

function polygon(value: unknown, at: string, list: IssueList, counter: { vertices: number }): LonLat[][] | null {
  if (!Array.isArray(value) || value.length === 0) {
    list.add(at, 'must be a non-empty array of linear rings');
    return null;
  }
  const rings = value.map((ring, r) => {
    const ringAt = `${at}.${r}`;
    const positions = path(ring, ringAt, list, counter);
    if (!positions) return null;
    const first = positions[0]!;
    const last = positions[positions.length - 1]!;
    if (first[0] !== last[0] || first[1] !== last[1]) {
      list.add(ringAt, 'ring is not closed: its last position must equal its first');
      return null;
    }
    if (positions.length < 4 || distinctCount(positions) < 3) {
      list.add(ringAt, 'ring needs at least 4 positions (3 distinct corners, then the first again)');
      return null;
    }
    if (ringArea(positions) === 0) {
      list.add(ringAt, 'ring encloses no area');
      return null;
    }
    return positions;
  });
  return rings.every((r): r is LonLat[] => r !== null) ? rings : null;
}

function distinctCount(positions: LonLat[]): number {
  return new Set(positions.map(([lon, lat]) => `${lon},${lat}`)).size;
}

function ringArea(ring: LonLat[]): number {
  let sum = 0;
  for (let i = 0; i + 1 < ring.length; i++) sum += ring[i]![0] * ring[i + 1]![1] - ring[i + 1]![0] * ring[i]![1];
  return Math.abs(sum) / 2;
}
