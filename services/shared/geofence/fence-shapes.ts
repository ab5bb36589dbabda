import { booleanPointInPolygon } from '@turf/turf';
import type { FenceKind } from '../contracts/domain.js';
import { degreesAround, distanceToPathM, haversineM, METRES_PER_DEGREE_LAT } from './geo-math.js';
import type { FenceGeometry } from './fence-geometry.js';
import { compileSchedule, type CompiledSchedule, type FenceSchedule } from './fence-schedule.js';


/** A geofences row as the evaluator loads it. */
export interface FenceRow {
  id: string;
  tenant_id: string;
  name: string;
  kind: FenceKind;
  geometry: FenceGeometry;
  radius_m: number | null;
  width_m: number | null;
  confirm_fixes: number;
  schedule: FenceSchedule | null;
  asset_filter: { asset_ids?: string[] } | null;
}

/** What one fix says about one fence: inside, outside, or too uncertain (its accuracy circle straddles the border). */
export const Side = { Uncertain: -1, Outside: 0, Inside: 1 } as const;
export type Side = (typeof Side)[keyof typeof Side];

/**
 * A fence ready for evaluation: its bounding box (circles and corridors buffered by their size),
 * exact containment and the distance to its border.
 */
export abstract class CompiledFence {
  readonly id: string;
  readonly tenantId: string;
  readonly name: string;
  readonly kind: FenceKind;
  readonly confirmFixes: number;
  readonly schedule: CompiledSchedule | null;
  readonly assetIds: ReadonlySet<string> | null;
  minLon = Infinity;
  minLat = Infinity;
  maxLon = -Infinity;
  maxLat = -Infinity;
  /** Scratch mark of the evaluator (the fix during which this fence was last judged). */
  seenInEvaluation = 0;

  constructor(row: FenceRow) {
    this.id = row.id;
    this.tenantId = row.tenant_id;
    this.name = row.name;
    this.kind = row.kind;
    this.confirmFixes = Math.max(1, row.confirm_fixes ?? 3);
    this.schedule = compileSchedule(row.schedule);
    const assetIds = row.asset_filter?.asset_ids;
    this.assetIds = Array.isArray(assetIds) && assetIds.length > 0 ? new Set(assetIds) : null;
  }

  /** Whether this fence takes evidence from a fix of `assetId` at `tsMs` (asset filter, active hours). */
  appliesTo(assetId: string | null, tsMs: number): boolean {
    if (this.assetIds && (assetId === null || !this.assetIds.has(assetId))) return false;
    return this.schedule === null || this.schedule.isActiveAt(tsMs);
  }

  /** Inside or outside, or uncertain when the border is closer than the fix's accuracy. */
  abstract observe(lon: number, lat: number, accuracyM: number): Side;
  /** Metres from the point to the fence; 0 inside. */
  abstract distanceM(lon: number, lat: number): number;
  abstract contains(lon: number, lat: number): boolean;
}

class PolygonFence extends CompiledFence {
  private readonly geometry: FenceGeometry;
  /** Every ring's vertices as [lon, lat, …], and where each ring starts and ends (vertex indices). */
  private readonly vertices: Float64Array;
  private readonly ringBounds: Uint32Array;

  constructor(row: FenceRow, polygons: [number, number][][][]) {
    super(row);
    this.geometry = row.geometry;
    const rings = polygons.flat();
    const total = rings.reduce((n, r) => n + r.length, 0);
    this.vertices = new Float64Array(total * 2);
    this.ringBounds = new Uint32Array(rings.length * 2);
    let v = 0;
    rings.forEach((ring, r) => {
      this.ringBounds[2 * r] = v;
      for (const [lon, lat] of ring) {
        this.vertices[2 * v] = lon;
        this.vertices[2 * v + 1] = lat;
        v++;
        if (lon < this.minLon) this.minLon = lon;
        if (lon > this.maxLon) this.maxLon = lon;
        if (lat < this.minLat) this.minLat = lat;
        if (lat > this.maxLat) this.maxLat = lat;
      }
      this.ringBounds[2 * r + 1] = v;
    });
  }

  contains(lon: number, lat: number): boolean {
    return booleanPointInPolygon([lon, lat], this.geometry as never);
  }

  observe(lon: number, lat: number, accuracyM: number): Side {
    const inside = this.contains(lon, lat);
    if (accuracyM > 0 && this.borderDistanceM(lon, lat) < accuracyM) return Side.Uncertain;
    return inside ? Side.Inside : Side.Outside;
  }

  distanceM(lon: number, lat: number): number {
    return this.contains(lon, lat) ? 0 : this.borderDistanceM(lon, lat);
  }

  private borderDistanceM(lon: number, lat: number): number {
    let best = Infinity;
    for (let r = 0; r < this.ringBounds.length; r += 2) {
      const d = distanceToPathM(lon, lat, this.vertices, this.ringBounds[r]!, this.ringBounds[r + 1]!);
      if (d < best) best = d;
    }
    return best;
  }
}

class CircleFence extends CompiledFence {
  private readonly lon: number;
  private readonly lat: number;
  private readonly radiusM: number;

  constructor(row: FenceRow, [lon, lat]: [number, number], radiusM: number) {
    super(row);
    this.lon = lon;
    this.lat = lat;
    this.radiusM = radiusM;
    // The box's longitude span is set by its edge farthest from the equator.
    const dLat = radiusM / METRES_PER_DEGREE_LAT;
    const { dLon } = degreesAround(Math.min(90, Math.abs(lat) + dLat), radiusM);
    this.minLon = lon - dLon;
    this.maxLon = lon + dLon;
    this.minLat = lat - dLat;
    this.maxLat = lat + dLat;
  }

  contains(lon: number, lat: number): boolean {
    return haversineM(this.lon, this.lat, lon, lat) <= this.radiusM;
  }

  observe(lon: number, lat: number, accuracyM: number): Side {
    const d = haversineM(this.lon, this.lat, lon, lat);
    if (Math.abs(d - this.radiusM) < accuracyM) return Side.Uncertain;
    return d <= this.radiusM ? Side.Inside : Side.Outside;
  }

  distanceM(lon: number, lat: number): number {
    return Math.max(0, haversineM(this.lon, this.lat, lon, lat) - this.radiusM);
  }
}

class CorridorFence extends CompiledFence {
  private readonly path: Float64Array;
  private readonly halfWidthM: number;

  constructor(row: FenceRow, line: [number, number][], widthM: number) {
    super(row);
    this.halfWidthM = widthM / 2;
    this.path = new Float64Array(line.flat());
    let maxAbsLat = 0;
    for (const [lon, lat] of line) {
      if (lon < this.minLon) this.minLon = lon;
      if (lon > this.maxLon) this.maxLon = lon;
      if (lat < this.minLat) this.minLat = lat;
      if (lat > this.maxLat) this.maxLat = lat;
      maxAbsLat = Math.max(maxAbsLat, Math.abs(lat));
    }
    const { dLat } = degreesAround(0, this.halfWidthM);
    const { dLon } = degreesAround(Math.min(90, maxAbsLat + dLat), this.halfWidthM);
    this.minLon -= dLon;
    this.maxLon += dLon;
    this.minLat -= dLat;
    this.maxLat += dLat;
  }

  private lineDistanceM(lon: number, lat: number): number {
    return distanceToPathM(lon, lat, this.path, 0, this.path.length / 2);
  }

  contains(lon: number, lat: number): boolean {
    return this.lineDistanceM(lon, lat) <= this.halfWidthM;
  }

  observe(lon: number, lat: number, accuracyM: number): Side {
    const d = this.lineDistanceM(lon, lat);
    if (Math.abs(d - this.halfWidthM) < accuracyM) return Side.Uncertain;
    return d <= this.halfWidthM ? Side.Inside : Side.Outside;
  }

  distanceM(lon: number, lat: number): number {
    return Math.max(0, this.lineDistanceM(lon, lat) - this.halfWidthM);
  }
}

/** Builds the evaluator's form of a stored fence; null for a row whose shape is incomplete. */
export function compileFence(row: FenceRow): CompiledFence | null {
  const g = row.geometry;
  switch (g?.type) {
    case 'Polygon':
      return new PolygonFence(row, [g.coordinates]);
    case 'MultiPolygon':
      return new PolygonFence(row, g.coordinates);
    case 'Point':
      return row.radius_m ? new CircleFence(row, g.coordinates, row.radius_m) : null;
    case 'LineString':
      return row.width_m ? new CorridorFence(row, g.coordinates, row.width_m) : null;
    default:
      return null;
  }
}
