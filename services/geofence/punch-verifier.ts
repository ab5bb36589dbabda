import type { FenceIndex } from './fence-index.js';
import type { CompiledFence } from '../shared/geofence/fence-shapes.js';

export interface PunchPosition {
  lat: number | null;
  lon: number | null;
  accuracy_m: number | null;
  /** The fence of the punching device's site, when it has one: preferred when several sites qualify. */
  site_id: string | null;
}

export interface PunchVerification {
  gpsVerified: boolean;
  /** The site the punch was verified at; when not verified, the nearest site. */
  siteId: string | null;
  /** Metres to that site (0 inside it); null without a position or without sites. */
  distanceM: number | null;
}

/** Sites measured exactly when looking for the nearest: a bounding-box ranking picks them first. */
const NEAREST_SITES_MEASURED = 16;

/**
 * GPS verification of a punch (docs/design.md, "Punches"): inside a `site` fence, or within the punch's
 * accuracy of one, verifies it — preferring the device's own site, then the nearest qualifying one.
 * Otherwise it is unverified, with the distance to the nearest site. Schedules do not apply: a
 * punch is checked for where it was, not when.
 */
export function verifyPunch(index: FenceIndex, punch: PunchPosition): PunchVerification {
  const { lat, lon } = punch;
  if (lat === null || lon === null || !Number.isFinite(lat) || !Number.isFinite(lon)) {
    return { gpsVerified: false, siteId: null, distanceM: null };
  }
  const accuracyM = punch.accuracy_m !== null && punch.accuracy_m > 0 ? punch.accuracy_m : 0;
  let best: { fence: CompiledFence; distanceM: number } | null = null;
  for (const site of index.siteCandidates(lon, lat, accuracyM)) {
    const distanceM = site.distanceM(lon, lat);
    if (distanceM > accuracyM) continue;
    if (site.id === punch.site_id) return verified(site, distanceM);
    if (!best || distanceM < best.distanceM) best = { fence: site, distanceM };
  }
  if (best) return verified(best.fence, best.distanceM);
  let nearest: { fence: CompiledFence; distanceM: number } | null = null;
  for (const site of index.nearestSites(lon, lat, NEAREST_SITES_MEASURED)) {
    const distanceM = site.distanceM(lon, lat);
    if (!nearest || distanceM < nearest.distanceM) nearest = { fence: site, distanceM };
  }
  return nearest
    ? { gpsVerified: false, siteId: nearest.fence.id, distanceM: roundM(nearest.distanceM) }
    : { gpsVerified: false, siteId: null, distanceM: null };
}

const verified = (site: CompiledFence, distanceM: number): PunchVerification =>
  ({ gpsVerified: true, siteId: site.id, distanceM: roundM(distanceM) });

const roundM = (metres: number) => Math.round(metres * 10) / 10;
