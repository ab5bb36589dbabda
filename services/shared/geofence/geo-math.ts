/**
 * Distances on the WGS84 sphere, fast enough for the evaluator's hot path. Border distances use a
 * local equirectangular projection centred on the fix: within the few kilometres where a border
 * matters (accuracy circles, corridor half-widths) its error stays well under 1 %, and it costs a
 * multiply per vertex instead of a haversine.
 */
export const EARTH_RADIUS_M = 6_371_008.8;
const RAD = Math.PI / 180;
export const METRES_PER_DEGREE_LAT = EARTH_RADIUS_M * RAD;

export function haversineM(lon1: number, lat1: number, lon2: number, lat2: number): number {
  const dLat = (lat2 - lat1) * RAD;
  const dLon = (lon2 - lon1) * RAD;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** Degrees of latitude and longitude that cover `metres` around `lat` (longitude widens toward the poles). */
export function degreesAround(lat: number, metres: number): { dLat: number; dLon: number } {
  const dLat = metres / METRES_PER_DEGREE_LAT;
  const cos = Math.cos(Math.min(89.9, Math.abs(lat)) * RAD);
  return { dLat, dLon: Math.min(360, dLat / cos) };
}

/**
 * Shortest distance in metres from (lon0, lat0) to any segment of a flat coordinate path
 * `[lon, lat, lon, lat, …]` (ring or line) between vertex indices [from, to).
 */
export function distanceToPathM(lon0: number, lat0: number, path: Float64Array, from: number, to: number): number {
  const kx = Math.cos(lat0 * RAD) * METRES_PER_DEGREE_LAT;
  const ky = METRES_PER_DEGREE_LAT;
  let best = Infinity;
  let ax = (path[2 * from]! - lon0) * kx;
  let ay = (path[2 * from + 1]! - lat0) * ky;
  if (to - from === 1) return Math.hypot(ax, ay);
  for (let i = from + 1; i < to; i++) {
    const bx = (path[2 * i]! - lon0) * kx;
    const by = (path[2 * i + 1]! - lat0) * ky;
    const d2 = segmentDistanceSquaredToOrigin(ax, ay, bx, by);
    if (d2 < best) best = d2;
    ax = bx;
    ay = by;
  }
  return Math.sqrt(best);
}

function segmentDistanceSquaredToOrigin(ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  let t = len2 === 0 ? 0 : -(ax * dx + ay * dy) / len2;
  if (t < 0) t = 0;
  else if (t > 1) t = 1;
  const x = ax + t * dx;
  const y = ay + t * dy;
  return x * x + y * y;
}
