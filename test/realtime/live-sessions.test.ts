import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform } from '../../services/start.js';
import { bearer, buildTestApi, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { startRoles } from '../support/platform.js';
import { LiveClient } from './live-client.js';
import { liveUrl } from './fixtures.js';

/**
 * Live sockets opened with a session follow the user like REST does (docs/design.md, "Reliability and
 * security"): a change made through the API — disabling, re-roling, deleting the user, a new password —
 * closes them with 4001 within 5 s, at the default re-check interval; other users' sockets stay open.
 */

let db: TestDatabase;
let platform: Platform;
let api: TestApi;
let org: TestOrg;
let admin: string;
let port: number;
const clients: LiveClient[] = [];

beforeAll(async () => {
  db = await createTestDatabase({ RATE_LIMIT_TEAM_PER_MIN: '0' });
  platform = await startRoles(db.config, ['realtime']);
  port = platform.realtimePort!;
  api = await buildTestApi(db.config);
  org = await createOrg(db.owner, 'team');
  admin = await login(api, org);
});

afterAll(async () => {
  for (const client of clients) client.close();
  await api?.close();
  await platform?.close();
  await db?.drop();
});

let userCount = 0;

/** A dispatcher made through the API, signed in, with a live socket open on that session. */
async function dispatcherWithSocket() {
  const email = `dispatcher-${++userCount}@example.com`;
  const created = await api.sut.inject({ method: 'POST', url: '/v1/users', headers: bearer(admin), payload: { email, password: 'a long password', role: 'dispatcher' } });
  expect(created.statusCode, created.body).toBe(201);
  const session = await login(api, org, email, 'a long password');
  const client = await LiveClient.connect(liveUrl(port, session));
  clients.push(client);
  await client.request({ type: 'subscribe', channels: ['events'] });
  return { id: created.json().data.id as string, client };
}

const change = (id: string, method: 'PATCH' | 'DELETE', payload?: object) =>
  api.sut.inject({ method, url: `/v1/users/${id}`, headers: bearer(admin), ...(payload ? { payload } : {}) });

describe('session sockets', () => {
  it('close with 4001 within 5 s of their user being disabled, re-roled, deleted or given a new password', async () => {
    const bystander = await dispatcherWithSocket();
    const users = await Promise.all([dispatcherWithSocket(), dispatcherWithSocket(), dispatcherWithSocket(), dispatcherWithSocket()]);
    const changes = [change(users[0]!.id, 'PATCH', { disabled: true }), change(users[1]!.id, 'PATCH', { role: 'viewer' }),
      change(users[2]!.id, 'DELETE'), change(users[3]!.id, 'PATCH', { password: 'a new long password' })];
    const startedMs = Date.now();
    for (const res of await Promise.all(changes)) expect(res.statusCode).toBeLessThan(300);
    for (const { client } of users) {
      expect(await client.closed).toEqual({ code: 4001, reason: 'credentials revoked' });
    }
    expect(Date.now() - startedMs).toBeLessThan(5_000);
    // The bystander's socket is still open and answering.
    await bystander.client.request({ type: 'subscribe', channels: ['events'] });
    expect(await Promise.race([bystander.client.closed, new Promise((resolve) => setTimeout(() => resolve('open'), 2_500))])).toBe('open');
  });

  it('refuse a session ended that way at the upgrade (401)', async () => {
    const { id } = await dispatcherWithSocket();
    const session = await login(api, org, `dispatcher-${userCount}@example.com`, 'a long password');
    expect((await change(id, 'PATCH', { disabled: true })).statusCode).toBe(200);
    expect(await LiveClient.refusal(liveUrl(port, session))).toEqual({ status: 401, code: 'unauthorized' });
  });
});
