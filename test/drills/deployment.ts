import type pg from 'pg';
import { expect } from 'vitest';
import { asTenant, createAsset, createDevice, createOrg, type TestDevice, type TestOrg } from '../support/factories.js';
import { LiveClient } from '../realtime/live-client.js';
import { liveUrl } from '../realtime/fixtures.js';
import { within } from '../support/wait.js';

/** A tenant of the drills: its organization, a restricted fence at (LON, LAT + offset) and trackers on assets. */
export interface DrillTenant {
  org: TestOrg;
  fenceId: string;
  devices: TestDevice[];
  /** Where the fence is: fixes here are inside it. */
  inside: { lat: number; lon: number };
}

export const LON = 7.4474;
export const LAT = 46.9481;

export async function drillTenant(owner: pg.Pool, devices: number, latOffset = 0): Promise<DrillTenant> {
  const org = await createOrg(owner, 'unlimited');
  const inside = { lat: LAT + latOffset, lon: LON };
  const d = 0.001;
  const ring = [[LON - d, inside.lat - d], [LON + d, inside.lat - d], [LON + d, inside.lat + d], [LON - d, inside.lat + d], [LON - d, inside.lat - d]];
  const fenceId = await asTenant(owner, org.id, async (c) => (await c.query<{ id: string }>(
    `insert into geofences (tenant_id, name, kind, geometry, confirm_fixes) values ($1, 'Blasting zone', 'restricted', $2, 1) returning id`,
    [org.id, JSON.stringify({ type: 'Polygon', coordinates: [ring] })],
  )).rows[0]!.id);
  const made: TestDevice[] = [];
  for (let i = 0; i < devices; i++) made.push(await createDevice(owner, org.id, { assetId: await createAsset(owner, org.id, `Truck ${i}`) }));
  return { org, fenceId, devices: made, inside };
}

export async function signIn(apiBase: string, org: TestOrg): Promise<string> {
  const res = await fetch(`${apiBase}/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: org.adminEmail, password: org.adminPassword, organization_id: org.id }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: { token: string } }).data.token;
}

/** A dispatcher on a realtime node, subscribed to positions and events (from `since` when given). */
export async function dispatcher(liveEndpoint: string, token: string, since?: string): Promise<LiveClient> {
  const port = Number(new URL(liveEndpoint).port);
  const client = await within(15_000, `a live socket on ${liveEndpoint}`, LiveClient.connect(liveUrl(port, token)));
  await client.request({ type: 'subscribe', channels: ['positions', 'events'], ...(since ? { since } : {}) });
  return client;
}

/** Tenant ids and `device|ts` keys of the positions a socket received, with their counts. */
export function positionCounts(client: LiveClient): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of client.ofType('position')) {
    const key = `${String(m.device_id)}|${Date.parse(String(m.ts))}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Event rows of a tenant (read as the owner with the tenant set). */
export async function eventRows(owner: pg.Pool, tenantId: string): Promise<{ type: string; asset_id: string; stream_id: string | null }[]> {
  return asTenant(owner, tenantId, async (c) => (await c.query<{ type: string; asset_id: string; stream_id: string | null }>(
    'select type, asset_id, stream_id from events where tenant_id = $1 order by id', [tenantId])).rows);
}
