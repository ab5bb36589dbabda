import { mkdirSync } from 'node:fs';
import mqtt from 'mqtt';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Platform } from '../../services/start.js';
import { startRoles } from '../support/platform.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createAsset, createDevice, createOrg } from '../support/factories.js';
import { launchChromium } from './browser.js';
import { ensureWebBuilt } from './web-build.js';

/** A dispatcher opens /map in Chromium, signs in, and watches an MQTT fix move the marker and raise a breach. */
const OUTPUT_DIR = 'test-output';
let db: TestDatabase;
let platform: Platform;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let endpoints: Record<string, string>;

beforeAll(async () => {
  ensureWebBuilt();
  mkdirSync(OUTPUT_DIR, { recursive: true });
  db = await createTestDatabase();
  platform = await startRoles(db.config);
  endpoints = Object.fromEntries(Object.entries(Object.assign({}, ...platform.roles.map((r) => r.endpoints)) as Record<string, string>)
    .map(([name, url]) => [name, url.replace('localhost', '127.0.0.1')]));
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await platform?.close();
  await db?.drop();
});

async function markerAt(page: Page, key: string): Promise<{ lat: number; lon: number; offsetPx: number }> {
  return page.evaluate((key) => {
    const element = document.querySelector<HTMLElement>(`.asset-marker[data-key="${key}"]`)!;
    const map = (window as unknown as { fieldopsMap: { latLngToContainerPoint(p: [number, number]): { x: number; y: number }; getContainer(): HTMLElement } }).fieldopsMap;
    const lat = Number(element.dataset.lat);
    const lon = Number(element.dataset.lon);
    const expected = map.latLngToContainerPoint([lat, lon]);
    const box = element.getBoundingClientRect();
    const container = map.getContainer().getBoundingClientRect();
    const drawn = { x: box.left + box.width / 2 - container.left, y: box.top + box.height / 2 - container.top };
    return { lat, lon, offsetPx: Math.hypot(drawn.x - expected.x, drawn.y - expected.y) };
  }, key);
}

it('serves the page and tells it where the live socket is', async () => {
  const page = await fetch(`${endpoints.api}/map`);
  expect(page.status).toBe(200);
  expect(page.headers.get('content-type')).toContain('text/html');
  expect(await page.text()).toContain('/map/map.js');
  expect(await (await fetch(`${endpoints.api}/map/config.json`)).json()).toEqual({
    realtime_url: null, realtime_port: platform.realtimePort, tile_url: null, tile_attribution: null,
  });
  expect((await fetch(`${endpoints.api}/map/map.js`)).headers.get('content-type')).toContain('text/javascript');
  expect((await fetch(`${endpoints.api}/map/%2e%2e/package.json`)).status).toBe(404);
  expect((await fetch(`${endpoints.api}/map/nothing-here.js`)).status).toBe(404);
});

it('shows the fleet live: sign in, a fix moves the marker, the breach appears in the panel', async () => {
  const org = await createOrg(db.owner, 'team');
  const assetId = await createAsset(db.owner, org.id, 'Excavator 7');
  const device = await createDevice(db.owner, org.id, { assetId, name: 'Excavator 7 tracker' });
  const [lon, lat] = [7.4474, 46.9481];
  const d = 0.0015;
  await asTenant(db.owner, org.id, (c) => c.query(
    `insert into geofences (tenant_id, name, kind, geometry, confirm_fixes) values ($1, 'Blasting zone', 'restricted', $2, 1)`,
    [org.id, JSON.stringify({ type: 'Polygon', coordinates: [[[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d], [lon - d, lat - d]]] })],
  ));

  const page = await browser.context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${endpoints.api}/map`);
  await page.getByLabel('Email').fill(org.adminEmail);
  await page.getByLabel('Password').fill(org.adminPassword);
  await page.getByLabel('Organization id').fill(org.id);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="live"]').waitFor();
  await expect.poll(() => page.locator('#asset-list .asset').count()).toBe(1);

  const tracker = await mqtt.connectAsync(endpoints.mqtt!, { username: device.id, password: device.token, clientId: device.id, protocolVersion: 4, reconnectPeriod: 0 });
  try {
    await tracker.publishAsync(`fieldops/${device.id}/gps/json`,
      JSON.stringify({ fixes: [{ ts_ms: Date.now() - 500, lat, lon, speed_mps: 3, heading_deg: 90, accuracy_m: 3 }] }), { qos: 1 });
  } finally {
    await tracker.endAsync(true);
  }

  const marker = page.locator(`.asset-marker[data-key="${assetId}"]`);
  await expect.poll(() => marker.getAttribute('data-lat')).toBe(String(lat));
  expect(await marker.getAttribute('data-lon')).toBe(String(lon));
  const drawn = await markerAt(page, assetId);
  expect(drawn.offsetPx).toBeLessThan(2);
  await expect.poll(() => page.locator('#asset-list .asset .asset-where').first().textContent()).toBe('46.94810, 7.44740');

  const breach = page.locator('#event-list .event.breach');
  await breach.first().waitFor();
  expect(await breach.first().textContent()).toContain('Geofence breach');
  expect(await breach.first().textContent()).toContain('Blasting zone');
  await page.waitForTimeout(300); // let the marker's transition settle for the picture
  await page.screenshot({ path: `${OUTPUT_DIR}/live-map.png` });
  expect(pageErrors).toEqual([]);
});
