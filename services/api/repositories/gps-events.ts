import type { FixMeasurements } from '../../shared/contracts/stream-codec.js';
import type { Queryable } from '../../shared/db.js';
import type { FenceGeometry, LonLat } from '../../shared/geofence/fence-geometry.js';
import { compileFence, type FenceRow } from '../../shared/geofence/fence-shapes.js';
import { METRES_PER_DEGREE_LAT } from '../../shared/geofence/geo-math.js';
import { badReference, badRequest } from '../../shared/contracts/errors.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { SqlParams } from '../sql.js';

export interface GpsFix extends FixMeasurements {
  id: string;
  asset_id: string | null;
  device_id: string;
  ts: Date;
  received_at: Date;
  seq: number | null;
}

/** One device's fixes within one time bucket: where it was last, how many fixes, how fast. */
export interface GpsBucket {
  bucket: Date;
  asset_id: string | null;
  device_id: string;
  fixes: number;
  first_ts: Date;
  last_ts: Date;
  lat: number;
  lon: number;
  avg_speed_mps: number | null;
  max_speed_mps: number | null;
}

export const GPS_BUCKETS = { '1m': '1 minute', '5m': '5 minutes', '1h': '1 hour' } as const;
export type GpsBucketSize = keyof typeof GPS_BUCKETS;

export interface GpsEventFilters {
  asset_id?: string;
  device_id?: string;
  from?: string;
  to?: string;
  geofence_id?: string;
  bucket?: GpsBucketSize;
}

/** Without `from`, a bucketed track covers the day before `to` (or now). */
const DEFAULT_TRACK_MS = 24 * 3600_000;

/**
 * Buckets a track may span per device (docs/design.md, "Reliability and security"): a week of minutes,
 * five weeks of 5 minutes, 420 days of hours. The aggregate reads every fix of the range before its
 * first page, so the range is what bounds its cost.
 */
export const MAX_TRACK_BUCKETS = 10_080;
const BUCKET_MS: Record<GpsBucketSize, number> = { '1m': 60_000, '5m': 300_000, '1h': 3_600_000 };

/** Whether TimescaleDB is installed: decides `time_bucket` or `date_bin`, once per process. */
let timescale: Promise<boolean> | null = null;

/**
 * Fixes from the `positions_v` view (the tenant's rows only), newest first by default, keyset-paged
 * on (ts, id). `geofence_id` keeps the fixes inside that fence, decided in SQL: a bounding-box
 * prefilter, then PostgreSQL's own geometry — `point <@ polygon` per ring (holes excluded), great-circle
 * distance for circles, distance to the path for corridors (in a plane scaled by the cosine of its
 * latitude). `bucket` aggregates per device and time bucket instead.
 */
export function createGpsEventRepository(db: Queryable) {
  async function zoneCondition(geofenceId: string, params: SqlParams): Promise<string> {
    const { rows } = await db.query<FenceRow>(
      `select id, tenant_id, name, kind, geometry, radius_m, width_m, confirm_fixes, schedule, asset_filter from geofences where id = $1`,
      [geofenceId],
    );
    const fence = rows[0] ? compileFence(rows[0]) : null;
    if (!rows[0] || !fence) throw badReference('geofence_id', 'geofence');
    const box = `p.lon between ${params.add(fence.minLon)} and ${params.add(fence.maxLon)} and p.lat between ${params.add(fence.minLat)} and ${params.add(fence.maxLat)}`;
    return `${box} and (${exactCondition(rows[0].geometry, rows[0].radius_m, rows[0].width_m, params)})`;
  }

  async function bucketFunction(size: GpsBucketSize, params: SqlParams): Promise<string> {
    timescale ??= db.query<{ installed: boolean }>(`select exists (select from pg_extension where extname = 'timescaledb') as installed`)
      .then((r) => r.rows[0]!.installed)
      .catch((err: unknown) => {
        timescale = null;
        throw err;
      });
    const width = `${params.add(GPS_BUCKETS[size])}::interval`;
    return (await timescale) ? `time_bucket(${width}, p.ts)` : `date_bin(${width}, p.ts, timestamptz '2000-01-01')`;
  }

  return {
    async list(filters: GpsEventFilters, query: ListQuery): Promise<ListResult<GpsFix | GpsBucket>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.asset_id) where.push(`p.asset_id = ${params.add(filters.asset_id)}`);
      if (filters.device_id) where.push(`p.device_id = ${params.add(filters.device_id)}`);
      let from = filters.from;
      if (!from && filters.bucket) from = new Date((filters.to ? Date.parse(filters.to) : Date.now()) - DEFAULT_TRACK_MS).toISOString();
      if (filters.bucket) checkTrackRange(filters.bucket, from!, filters.to);
      if (from) where.push(`p.ts >= ${params.add(from)}`);
      if (filters.to) where.push(`p.ts < ${params.add(filters.to)}`);
      if (filters.geofence_id) where.push(await zoneCondition(filters.geofence_id, params));

      if (!filters.bucket) {
        return listPage<GpsFix>(db, {
          select: `p.id, p.asset_id, p.device_id, p.ts, p.received_at, p.lat, p.lon, p.speed_mps, p.heading_deg, p.accuracy_m,
                   p.altitude_m, p.battery_pct, p.seq::float8 as seq`,
          from: 'positions_v p',
          where,
          params,
          id: 'p.id',
          sortable: { ts: 'p.ts' },
          defaultSort: '-ts',
          total: false,
        }, query);
      }
      const bucket = await bucketFunction(filters.bucket, params);
      return listPage<GpsBucket>(db, {
        select: 'b.bucket, b.asset_id, b.device_id, b.fixes, b.first_ts, b.last_ts, b.lat, b.lon, b.avg_speed_mps, b.max_speed_mps',
        from: `(select ${bucket} as bucket, p.device_id, count(*)::int as fixes, min(p.ts) as first_ts, max(p.ts) as last_ts,
                       (array_agg(p.asset_id order by p.ts desc))[1] as asset_id,
                       (array_agg(p.lat order by p.ts desc))[1] as lat, (array_agg(p.lon order by p.ts desc))[1] as lon,
                       avg(p.speed_mps)::real as avg_speed_mps, max(p.speed_mps) as max_speed_mps
                  from positions_v p ${where.length ? `where ${where.map((c) => `(${c})`).join(' and ')}` : ''}
                 group by 1, 2) b`,
        params,
        // Unique within a bucket: one row per device.
        id: 'b.device_id',
        sortable: { ts: 'b.bucket' },
        defaultSort: '-ts',
        total: false,
      }, query);
    },
  };
}

function checkTrackRange(size: GpsBucketSize, from: string, to: string | undefined): void {
  const spanMs = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  const maxMs = MAX_TRACK_BUCKETS * BUCKET_MS[size];
  if (!(spanMs <= maxMs)) {
    throw badRequest(`a ${size} track spans at most ${MAX_TRACK_BUCKETS} buckets (${maxMs / 86_400_000} days)`,
      [{ path: 'from', message: `must be at most ${maxMs / 86_400_000} days before to` }]);
  }
}

function exactCondition(geometry: FenceGeometry, radiusM: number | null, widthM: number | null, params: SqlParams): string {
  const point = 'point(p.lon, p.lat)';
  const polygon = (rings: LonLat[][]) => {
    const [shell, ...holes] = rings;
    const inside = `${point} <@ ${params.add(polygonText(shell!))}::polygon`;
    return [inside, ...holes.map((hole) => `not (${point} <@ ${params.add(polygonText(hole))}::polygon)`)].join(' and ');
  };
  switch (geometry.type) {
    case 'Polygon':
      return polygon(geometry.coordinates);
    case 'MultiPolygon':
      return geometry.coordinates.map((rings) => `(${polygon(rings)})`).join(' or ');
    case 'Point': {
      const [lon, lat] = geometry.coordinates;
      const [lonP, latP] = [params.add(lon), params.add(lat)];
      return `2 * 6371008.8 * asin(least(1, sqrt(sin(radians(p.lat - ${latP}) / 2) ^ 2
                + cos(radians(${latP})) * cos(radians(p.lat)) * sin(radians(p.lon - ${lonP}) / 2) ^ 2))) <= ${params.add(radiusM)}`;
    }
    case 'LineString': {
      const meanLat = geometry.coordinates.reduce((sum, [, lat]) => sum + lat, 0) / geometry.coordinates.length;
      const k = Math.cos((meanLat * Math.PI) / 180);
      const path = `[${geometry.coordinates.map(([lon, lat]) => `(${lon * k},${lat})`).join(',')}]`;
      return `(point(p.lon * ${params.add(k)}, p.lat) <-> ${params.add(path)}::path) * ${METRES_PER_DEGREE_LAT} <= ${params.add((widthM ?? 0) / 2)}`;
    }
  }
}

const polygonText = (ring: LonLat[]) => `(${ring.map(([lon, lat]) => `(${lon},${lat})`).join(',')})`;
