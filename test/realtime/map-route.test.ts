import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { buildTestApi, type TestApi } from '../support/api.js';
import { ensureWebBuilt } from './web-build.js';

/** The map's configuration as a deployment with its own tile server and public live URL sets it. */
let db: TestDatabase;
let api: TestApi;

beforeAll(async () => {
  ensureWebBuilt();
  db = await createTestDatabase({
    MAP_TILE_URL: 'https://{s}.tiles.example.org/{z}/{x}/{y}.png',
    MAP_TILE_ATTRIBUTION: '© Example contributors',
    PUBLIC_REALTIME_URL: 'wss://live.example.org/v1/live',
    REALTIME_PORT: '9443',
  });
  api = await buildTestApi(db.config);
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

it('tells the page the public live URL and the tile server', async () => {
  const res = await api.sut.inject({ method: 'GET', url: '/map/config.json' });
  expect(res.statusCode).toBe(200);
  expect(res.json()).toEqual({
    realtime_url: 'wss://live.example.org/v1/live',
    realtime_port: 9443,
    tile_url: 'https://{s}.tiles.example.org/{z}/{x}/{y}.png',
    tile_attribution: '© Example contributors',
  });
});

it("lets the page load that tile server's images and nothing else from outside", async () => {
  const res = await api.sut.inject({ method: 'GET', url: '/map' });
  expect(res.statusCode).toBe(200);
  const policy = res.headers['content-security-policy'];
  expect(policy).toContain("img-src 'self' data: https://*.tiles.example.org");
  expect(policy).toContain("default-src 'self'");
});
