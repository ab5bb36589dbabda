/**
 * The demo organization's world: sites, restricted zones, crews and the loops its vehicles drive
 * (around Lyon). Routes pass through the sites (where vehicles stop a while) and cross the
 * restricted zones, so that enter / exit / breach events flow from the first minute.
 */
export type LonLat = [lon: number, lat: number];

export interface DemoSite {
  key: string;
  name: string;
  address: string;
  center: LonLat;
  radiusM: number;
}

export interface DemoZone {
  key: string;
  name: string;
  /** A closed ring. */
  ring: LonLat[];
}

export interface DemoVehicle {
  name: string;
  make: string;
  model: string;
  /** A loop of waypoints (sites by key, or coordinates), driven at `speedMps`, stopping `dwellS` at each site. */
  route: (string | LonLat)[];
  speedMps: number;
  dwellS: number;
}

export interface DemoEmployee {
  name: string;
  role: string;
  badgeCode: string;
}

const box = ([lon, lat]: LonLat, halfLon: number, halfLat: number): LonLat[] => [
  [lon - halfLon, lat - halfLat], [lon + halfLon, lat - halfLat], [lon + halfLon, lat + halfLat], [lon - halfLon, lat + halfLat], [lon - halfLon, lat - halfLat],
];

/** The customer the demo's sites and vehicles work for. */
export const DEMO_CLIENT = { name: 'Lyon Metro Works', email: 'works@lyon-metro.example' };

export const DEMO_SITES: DemoSite[] = [
  { key: 'depot', name: 'Gerland depot', address: 'Avenue Tony Garnier, 69007 Lyon', center: [4.8330, 45.7300], radiusM: 150 },
  { key: 'part-dieu', name: 'Part-Dieu tower works', address: 'Rue de Bonnel, 69003 Lyon', center: [4.8590, 45.7606], radiusM: 120 },
  { key: 'vaise', name: 'Vaise substation retrofit', address: 'Quai Arloing, 69009 Lyon', center: [4.8045, 45.7745], radiusM: 120 },
];

export const DEMO_ZONES: DemoZone[] = [
  { key: 'rail-yard', name: 'Rail yard (restricted)', ring: box([4.8440, 45.7470], 0.0022, 0.0014) },
  { key: 'high-voltage', name: 'High-voltage station (restricted)', ring: box([4.8200, 45.7640], 0.0014, 0.0009) },
];

const RAIL_YARD: LonLat = [4.8440, 45.7470];
const HIGH_VOLTAGE: LonLat = [4.8200, 45.7640];

export const DEMO_VEHICLES: DemoVehicle[] = [
  { name: 'Van 1', make: 'Renault', model: 'Master', route: ['depot', RAIL_YARD, 'part-dieu'], speedMps: 12, dwellS: 25 },
  { name: 'Van 2', make: 'Renault', model: 'Master', route: ['depot', HIGH_VOLTAGE, 'vaise'], speedMps: 11, dwellS: 30 },
  { name: 'Crane truck', make: 'Liebherr', model: 'LTM 1050', route: ['part-dieu', 'vaise', HIGH_VOLTAGE], speedMps: 9, dwellS: 40 },
  { name: 'Excavator transport', make: 'Volvo', model: 'FH16', route: ['depot', 'part-dieu', 'vaise'], speedMps: 10, dwellS: 35 },
  { name: 'Pickup 1', make: 'Toyota', model: 'Hilux', route: ['part-dieu', RAIL_YARD, 'depot'], speedMps: 14, dwellS: 20 },
  { name: 'Pickup 2', make: 'Ford', model: 'Ranger', route: ['vaise', 'depot', RAIL_YARD, 'part-dieu'], speedMps: 13, dwellS: 20 },
];

export const DEMO_EMPLOYEES: DemoEmployee[] = [
  { name: 'Amélie Durand', role: 'Site lead', badgeCode: 'B-1001' },
  { name: 'Karim Benali', role: 'Electrician', badgeCode: 'B-1002' },
  { name: 'Sofia Rossi', role: 'Crane operator', badgeCode: 'B-1003' },
  { name: 'Lucas Martin', role: 'Technician', badgeCode: 'B-1004' },
  { name: 'Nadia Haddad', role: 'Safety officer', badgeCode: 'B-1005' },
  { name: 'Tom Weber', role: 'Driver', badgeCode: 'B-1006' },
  { name: 'Inès Moreau', role: 'Technician', badgeCode: 'B-1007' },
  { name: 'Paul Girard', role: 'Apprentice', badgeCode: 'B-1008' },
];

/** A certification or two per trade, one of them expiring within weeks (for `certification_expires_before`). */
export function certificationsOf(employee: DemoEmployee): { name: string; issuer: string; expires_on: string }[] {
  const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
  const index = DEMO_EMPLOYEES.indexOf(employee);
  const certifications = [{ name: 'Working at height', issuer: 'INRS', expires_on: inDays(index === 0 ? 21 : 300 + index * 30) }];
  if (employee.role === 'Electrician') certifications.push({ name: 'Electrical clearance B2V', issuer: 'UTE', expires_on: inDays(45) });
  if (employee.role === 'Crane operator') certifications.push({ name: 'CACES R483', issuer: 'CACES', expires_on: inDays(500) });
  return certifications;
}

/** Attendance clocks stand at these sites. */
export const DEMO_CLOCK_SITES = ['depot', 'part-dieu', 'vaise'];

export function siteByKey(key: string): DemoSite {
  const site = DEMO_SITES.find((s) => s.key === key);
  if (!site) throw new Error(`no demo site "${key}"`);
  return site;
}

/** A route's waypoints as coordinates, each with the time to stand still there. */
export function routeWaypoints(vehicle: DemoVehicle): { at: LonLat; dwellS: number }[] {
  return vehicle.route.map((stop) =>
    typeof stop === 'string' ? { at: siteByKey(stop).center, dwellS: vehicle.dwellS } : { at: stop, dwellS: 0 });
}
