import { certificationsOf, DEMO_CLIENT, DEMO_CLOCK_SITES, DEMO_EMPLOYEES, DEMO_SITES, DEMO_VEHICLES, DEMO_ZONES } from './demo-fleet.js';
import type { SimulatedDevice } from './fleet-simulator.js';

/** How the simulator signs in to a deployment's API: an API key, or a user's login. */
export type ApiCredentials =
  | { apiKey: string }
  | { email: string; password: string; organizationId: string };

interface Named {
  id: string;
  name: string;
}

export class ProvisionError extends Error {}

/**
 * Provisions the demo fleet in an organization of any deployment through its REST API (docs/design.md,
 * "REST API"), for `fieldops demo --target`: the fences, the client, sites, crew and assets where the
 * deployment offers those resources, then the devices. Everything is named `Demo …` and found again by name on
 * the next run; devices found again get a new token (rotate-token), since tokens are shown only once.
 */
export async function provisionOverApi(apiUrl: string, credentials: ApiCredentials): Promise<SimulatedDevice[]> {
  const api = new ApiClient(apiUrl.replace(/\/+$/, ''), await bearerFor(apiUrl, credentials));

  const fences = await api.listAll('/v1/geofences');
  const siteFence = new Map<string, string>();
  for (const site of DEMO_SITES) {
    siteFence.set(site.key, await api.findOrCreate(fences, `Demo ${site.name}`, '/v1/geofences', {
      kind: 'site', geometry: { type: 'Point', coordinates: site.center }, radius_m: site.radiusM,
    }));
  }
  for (const zone of DEMO_ZONES) {
    await api.findOrCreate(fences, `Demo ${zone.name}`, '/v1/geofences', { kind: 'restricted', geometry: { type: 'Polygon', coordinates: [zone.ring] } });
  }

  // Clients, sites, employees and assets are resources of newer deployments; without them fixes are keyed
  // by device, clocks stand at the site fences, and punches come out as unknown employees — still stored,
  // evaluated and evented.
  const clients = await api.listAll('/v1/clients').catch(() => null);
  const clientId = clients ? await api.findOrCreate(clients, `Demo ${DEMO_CLIENT.name}`, '/v1/clients', { email: DEMO_CLIENT.email }) : null;
  const sites = await api.listAll('/v1/sites').catch(() => null);
  const clockSite = new Map(siteFence);
  for (const site of sites ? DEMO_SITES : []) {
    clockSite.set(site.key, await api.findOrCreate(sites!, `Demo ${site.name}`, '/v1/sites', {
      address: site.address, location: { lat: site.center[1], lon: site.center[0] }, geofence_id: siteFence.get(site.key),
      ...(clientId ? { client_id: clientId } : {}),
    }));
  }
  const employees = await api.listAll('/v1/employees').catch(() => null);
  for (const employee of employees ? DEMO_EMPLOYEES : []) {
    await api.findOrCreate(employees!, `Demo ${employee.name}`, '/v1/employees', {
      role: employee.role, badge_code: employee.badgeCode, certifications: certificationsOf(employee),
    });
  }

  const assets = await api.listAll('/v1/assets').catch(() => null);
  const devices = await api.listAll('/v1/devices');
  const provisioned: SimulatedDevice[] = [];
  for (const vehicle of DEMO_VEHICLES) {
    const assetId = assets
      ? await api.findOrCreate(assets, `Demo ${vehicle.name}`, '/v1/assets', { make: vehicle.make, model: vehicle.model, ...(clientId ? { client_id: clientId } : {}) })
      : null;
    const { id, token } = await api.deviceWithToken(devices, `Demo ${vehicle.name} tracker`, { kind: 'tracker', ...(assetId ? { asset_id: assetId } : {}) });
    provisioned.push({ kind: 'tracker', id, token, vehicle: vehicle.name });
  }
  for (const key of DEMO_CLOCK_SITES) {
    const site = DEMO_SITES.find((s) => s.key === key)!;
    const { id, token } = await api.deviceWithToken(devices, `Demo ${site.name} clock`, { kind: 'attendance', site_id: clockSite.get(key) });
    provisioned.push({ kind: 'attendance', id, token, site: key });
  }
  return provisioned;
}

async function bearerFor(apiUrl: string, credentials: ApiCredentials): Promise<string> {
  if ('apiKey' in credentials) return credentials.apiKey;
  const response = await fetch(new URL('/v1/auth/token', apiUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: credentials.email, password: credentials.password, organization_id: credentials.organizationId }),
  });
  const body = (await response.json().catch(() => ({}))) as { data?: { token?: string }; error?: { message?: string } };
  if (!response.ok || !body.data?.token) throw new ProvisionError(`sign-in at ${apiUrl} failed: ${response.status} ${body.error?.message ?? ''}`.trim());
  return body.data.token;
}

class ApiClient {
  constructor(private readonly base: string, private readonly bearer: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.bearer}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const parsed = (await response.json().catch(() => ({}))) as { data?: T; error?: { code?: string; message?: string } };
    if (!response.ok) throw new ProvisionError(`${method} ${path}: ${response.status} ${parsed.error?.code ?? ''} ${parsed.error?.message ?? ''}`.trim());
    return parsed.data as T;
  }

  /** Every item of a list resource, page by page. */
  async listAll(path: string): Promise<Named[]> {
    const items: Named[] = [];
    for (let offset = 0; ; offset += 100) {
      const page = await this.call<Named[]>('GET', `${path}?limit=100&offset=${offset}`);
      items.push(...page);
      if (page.length < 100) return items;
    }
  }

  async findOrCreate(existing: Named[], name: string, path: string, fields: Record<string, unknown>): Promise<string> {
    const found = existing.find((item) => item.name === name);
    if (found) return found.id;
    const created = await this.call<Named>('POST', path, { name, ...fields });
    existing.push(created);
    return created.id;
  }

  async deviceWithToken(existing: Named[], name: string, fields: Record<string, unknown>): Promise<{ id: string; token: string }> {
    const found = existing.find((item) => item.name === name);
    if (found) return this.call<{ id: string; token: string }>('POST', `/v1/devices/${found.id}/rotate-token`);
    return this.call<{ id: string; token: string }>('POST', '/v1/devices', { name, ...fields });
  }
}
