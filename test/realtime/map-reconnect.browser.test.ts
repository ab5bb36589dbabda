import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Platform } from '../../services/start.js';
import { freePort, startRoles } from '../support/platform.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg } from '../support/factories.js';
import { launchChromium } from './browser.js';
import { ensureWebBuilt } from './web-build.js';
import { StreamWriter } from './fixtures.js';

/**
 * The realtime role in a process of its own (as `fieldops start --role realtime`) on a fixed port, the
 * API in another; the realtime process restarts while a dispatcher watches.
 */
let db: TestDatabase;
let api: Platform;
let realtime: Platform | null = null;
let browser: Awaited<ReturnType<typeof launchChromium>>;
let streams: StreamWriter;

beforeAll(async () => {
  ensureWebBuilt();
  db = await createTestDatabase({ REALTIME_PORT: String(await freePort()) });
  api = await startRoles(db.config, ['api']);
  realtime = await startRoles(db.config, ['realtime']);
  streams = new StreamWriter(db.config);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await streams?.close();
  await realtime?.close();
  await api?.close();
  await db?.drop();
});

it('shows a banner while the realtime process is down, then reconnects with since and shows what it missed', async () => {
  const org = await createOrg(db.owner, 'team');
  const page = await browser.context.newPage();
  await page.goto(`${api.roles[0]!.endpoints.api!.replace('localhost', '127.0.0.1')}/map`);
  await page.getByLabel('Email').fill(org.adminEmail);
  await page.getByLabel('Password').fill(org.adminPassword);
  await page.getByLabel('Organization id').fill(org.id);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="live"]').waitFor();

  const before = await streams.event(org.id, 'work_order.created', { title: 'Before the restart' });
  await page.locator(`#event-list .event[data-id="${before}"]`).waitFor();

  await realtime!.close();
  realtime = null;
  await page.locator('#banner').waitFor({ state: 'visible' });
  expect(await page.locator('#banner-text').textContent()).toContain('Disconnected from live updates');
  expect(await page.locator('#connection').getAttribute('data-state')).toBe('disconnected');
  const missed = await streams.event(org.id, 'asset.geofence_breach', { geofence_name: 'Depot' });

  realtime = await startRoles(db.config, ['realtime']);
  await page.locator('#connection[data-state="live"]').waitFor({ timeout: 20_000 });
  await page.locator(`#event-list .event.breach[data-id="${missed}"]`).waitFor();
  expect(await page.locator('#banner').isHidden()).toBe(true);
  expect(await page.locator('#event-list .event').evaluateAll((items) => items.map((i) => (i as HTMLElement).dataset.id))).toEqual([missed, before]);
});
