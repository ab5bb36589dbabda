import { randomBytes } from 'node:crypto';
import type { Queryable } from '../shared/db.js';
import { inTransaction } from '../shared/db.js';
import { randomSecret, sha256 } from '../shared/secrets.js';
import { insertTenant, prepareTenant } from '../shared/tenants.js';
import { certificationsOf, DEMO_CLIENT, DEMO_CLOCK_SITES, DEMO_EMPLOYEES, DEMO_SITES, DEMO_VEHICLES, DEMO_ZONES } from './demo-fleet.js';
import type { SimulatedDevice } from './fleet-simulator.js';

export const DEMO_ADMIN_EMAIL = 'demo@fieldops.example';

export interface DemoSeed {
  organizationId: string;
  adminEmail: string;
  /** Generated for this seed, shown once; never a default. */
  adminPassword: string;
  devices: SimulatedDevice[];
}

/** A password a person can type: 20 characters from an unambiguous alphabet (≈ 100 bits). */
function generatePassword(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(20);
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

/**
 * Creates the demo organization in one transaction, as the owner with the tenant set (so forced RLS
 * holds): its admin, a client, its sites (each owning a circular `site` fence) and restricted zones,
 * the crew with badge codes and certifications, one asset per vehicle, a tracker on each and an
 * attendance clock at each site. Device tokens
 * are generated here (stored hashed, like any device's) and handed to the simulator.
 */
export async function seedDemo(owner: Queryable): Promise<DemoSeed> {
  const adminPassword = generatePassword();
  const tenant = await prepareTenant({
    name: 'Demo Field Services', plan: 'unlimited', addons: ['api'], adminEmail: DEMO_ADMIN_EMAIL, adminPassword,
  });
  const devices = await inTransaction(owner, async () => {
    await insertTenant(owner, tenant);
    const { rows: [client] } = await owner.query<{ id: string }>(
      "insert into clients (tenant_id, name, email) values (app_tenant(), $1, $2) returning id", [DEMO_CLIENT.name, DEMO_CLIENT.email]);
    const siteIds = new Map<string, string>();
    for (const site of DEMO_SITES) {
      const fenceId = await insertFence(owner, site.name, 'site', { type: 'Point', coordinates: site.center }, site.radiusM);
      const { rows: [row] } = await owner.query<{ id: string }>(
        `insert into sites (tenant_id, name, client_id, address, lat, lon, geofence_id)
         values (app_tenant(), $1, $2, $3, $4, $5, $6) returning id`,
        [site.name, client!.id, site.address, site.center[1], site.center[0], fenceId]);
      siteIds.set(site.key, row!.id);
    }
    for (const zone of DEMO_ZONES) await insertFence(owner, zone.name, 'restricted', { type: 'Polygon', coordinates: [zone.ring] }, null);
    for (const employee of DEMO_EMPLOYEES) {
      await owner.query('insert into employees (tenant_id, name, role, badge_code, certifications) values (app_tenant(), $1, $2, $3, $4)',
        [employee.name, employee.role, employee.badgeCode, JSON.stringify(certificationsOf(employee))]);
    }
    const seeded: SimulatedDevice[] = [];
    for (const vehicle of DEMO_VEHICLES) {
      const { rows: [asset] } = await owner.query<{ id: string }>(
        'insert into assets (tenant_id, name, make, model, client_id) values (app_tenant(), $1, $2, $3, $4) returning id',
        [vehicle.name, vehicle.make, vehicle.model, client!.id]);
      const token = randomSecret(32);
      const id = await insertDevice(owner, `${vehicle.name} tracker`, 'tracker', token, asset!.id, null);
      seeded.push({ kind: 'tracker', id, token, vehicle: vehicle.name });
    }
    for (const key of DEMO_CLOCK_SITES) {
      const token = randomSecret(32);
      const site = DEMO_SITES.find((s) => s.key === key)!;
      const id = await insertDevice(owner, `${site.name} clock`, 'attendance', token, null, siteIds.get(key)!);
      seeded.push({ kind: 'attendance', id, token, site: key });
    }
    return seeded;
  });
  return { organizationId: tenant.id, adminEmail: DEMO_ADMIN_EMAIL, adminPassword, devices };
}

async function insertFence(db: Queryable, name: string, kind: 'site' | 'restricted', geometry: object, radiusM: number | null): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    'insert into geofences (tenant_id, name, kind, geometry, radius_m) values (app_tenant(), $1, $2, $3, $4) returning id',
    [name, kind, JSON.stringify(geometry), radiusM]);
  return rows[0]!.id;
}

async function insertDevice(db: Queryable, name: string, kind: 'tracker' | 'attendance', token: string, assetId: string | null, siteId: string | null): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    'insert into devices (tenant_id, name, kind, token_hash, asset_id, site_id) values (app_tenant(), $1, $2, $3, $4, $5) returning id',
    [name, kind, sha256(token), assetId, siteId]);
  return rows[0]!.id;
}
