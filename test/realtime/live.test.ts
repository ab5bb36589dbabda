import { sha256 } from '../../services/shared/secrets.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform } from '../../services/start.js';
import { startRoles } from '../support/platform.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createOrg, type TestOrg } from '../support/factories.js';
import { LiveClient } from './live-client.js';
import { apiKey, liveUrl, position, sessionToken, StreamWriter, uuidFor } from './fixtures.js';

let db: TestDatabase;
let platform: Platform;
let streams: StreamWriter;
let port: number;
let org: TestOrg;
let otherOrg: TestOrg;
let token: string;
const clients: LiveClient[] = [];

async function connect(bearer = token): Promise<LiveClient> {
  const client = await LiveClient.connect(liveUrl(port, bearer));
  clients.push(client);
  return client;
}

beforeAll(async () => {
  db = await createTestDatabase({ REALTIME_CREDENTIALS_RECHECK_MS: '200' });
  platform = await startRoles(db.config, ['realtime']);
  port = platform.realtimePort!;
  streams = new StreamWriter(db.config);
  org = await createOrg(db.owner, 'team');
  otherOrg = await createOrg(db.owner, 'team');
  token = await sessionToken(db.config, db.owner, org);
});

afterAll(async () => {
  for (const client of clients) client.close();
  await streams?.close();
  await platform?.close();
  await db?.drop();
});

describe('upgrade', () => {
  it('refuses a bad token with 401 before the upgrade', async () => {
    expect(await LiveClient.refusal(liveUrl(port, 'not-a-token'))).toEqual({ status: 401, code: 'unauthorized' });
    expect(await LiveClient.refusal(`ws://127.0.0.1:${port}/v1/live`)).toEqual({ status: 401, code: 'unauthorized' });
  });

  it('refuses a session without the live.read scope with 403', async () => {
    const withoutScope = await sessionToken(db.config, db.owner, org, ['assets.read']);
    expect(await LiveClient.refusal(liveUrl(port, withoutScope))).toEqual({ status: 403, code: 'forbidden' });
  });

  it('takes API keys on plans with API access only (402 otherwise)', async () => {
    expect(await LiveClient.refusal(liveUrl(port, await apiKey(db.owner, org)))).toEqual({ status: 402, code: 'payment_required' });
    const unlimited = await createOrg(db.owner, 'unlimited');
    const client = await connect(await apiKey(db.owner, unlimited));
    await client.request({ type: 'subscribe', channels: ['events'] });
    await streams.event(unlimited.id, 'work_order.created', { id: 'wo-1' });
    expect(await client.next()).toMatchObject({ type: 'event', event: 'work_order.created', tenant_id: unlimited.id });
  });

  it('refuses a revoked API key', async () => {
    const unlimited = await createOrg(db.owner, 'unlimited');
    const key = await apiKey(db.owner, unlimited);
    await asTenant(db.owner, unlimited.id, (c) => c.query('update api_keys set revoked_at = now()'));
    expect(await LiveClient.refusal(liveUrl(port, key))).toEqual({ status: 401, code: 'unauthorized' });
  });

  it('ends the open sockets of an API key once it is revoked (4001), and only those', async () => {
    const unlimited = await createOrg(db.owner, 'unlimited');
    const [revoked, kept] = [await apiKey(db.owner, unlimited), await apiKey(db.owner, unlimited)];
    const [first, second, other] = [await connect(revoked), await connect(revoked), await connect(kept)];
    await asTenant(db.owner, unlimited.id, (c) => c.query('update api_keys set revoked_at = now() where key_hash = $1', [sha256(revoked)]));
    expect(await first.closed).toEqual({ code: 4001, reason: 'credentials revoked' });
    expect(await second.closed).toEqual({ code: 4001, reason: 'credentials revoked' });
    await other.request({ type: 'subscribe', channels: ['events'] });
    await streams.event(unlimited.id, 'work_order.created', { id: 'wo-2' });
    expect(await other.next()).toMatchObject({ type: 'event', event: 'work_order.created' });
  });
});

describe('positions', () => {
  it('delivers a position from the stream with the contract fields', async () => {
    const client = await connect();
    await client.request({ type: 'subscribe', channels: ['positions'] });
    const fix = position(org.id, uuidFor('device-1'), uuidFor('asset-1'), 46.9481, 7.4474, { ts_ms: Date.UTC(2025, 2, 1, 12, 0, 0, 250), speed_mps: 3.5, heading_deg: 90 });
    await streams.positions([fix]);
    expect(await client.next()).toEqual({
      type: 'position',
      asset_id: uuidFor('asset-1'),
      device_id: uuidFor('device-1'),
      ts: '2025-03-01T12:00:00.250Z',
      lat: 46.9481,
      lon: 7.4474,
      speed_mps: 3.5,
      heading_deg: 90,
    });
  });

  it('keys a device without an asset by device, with asset_id null', async () => {
    const client = await connect();
    await client.request({ type: 'subscribe', channels: ['positions'], assets: [uuidFor('device-loose')] });
    await streams.positions([position(org.id, uuidFor('device-loose'), null, 1, 2)]);
    expect(await client.next()).toMatchObject({ type: 'position', asset_id: null, device_id: uuidFor('device-loose'), lat: 1, lon: 2 });
  });

  it('narrows positions to the assets asked for', async () => {
    const client = await connect();
    await client.request({ type: 'subscribe', channels: ['positions'], assets: [uuidFor('asset-b')] });
    await streams.positions([position(org.id, uuidFor('d-a'), uuidFor('asset-a'), 1, 1), position(org.id, uuidFor('d-b'), uuidFor('asset-b'), 2, 2)]);
    await streams.positions([position(org.id, uuidFor('d-a'), uuidFor('asset-a'), 3, 3), position(org.id, uuidFor('d-b'), uuidFor('asset-b'), 4, 4)]);
    expect(await client.next()).toMatchObject({ asset_id: uuidFor('asset-b'), lat: 2 });
    expect(await client.next()).toMatchObject({ asset_id: uuidFor('asset-b'), lat: 4 });
    expect(client.ofType('position').map((p) => p.asset_id)).toEqual([uuidFor('asset-b'), uuidFor('asset-b')]);

    await client.request({ type: 'unsubscribe', channels: ['positions'], assets: [uuidFor('asset-b')] });
    await client.request({ type: 'subscribe', channels: ['positions'] });
    await streams.positions([position(org.id, uuidFor('d-a'), uuidFor('asset-a'), 5, 5)]);
    expect(await client.next()).toMatchObject({ asset_id: uuidFor('asset-a'), lat: 5 });
  });

  it('narrows positions to a bounding box, also across the antimeridian', async () => {
    const client = await connect();
    await client.request({ type: 'subscribe', channels: ['positions'], bbox: [7, 46, 8, 47] });
    await streams.positions([
      position(org.id, uuidFor('d-out'), uuidFor('asset-out'), 45.9, 7.5),
      position(org.id, uuidFor('d-in'), uuidFor('asset-in'), 46.5, 7.5),
      position(org.id, uuidFor('d-out'), uuidFor('asset-out'), 46.5, 8.5),
      position(org.id, uuidFor('d-in'), uuidFor('asset-in'), 46.6, 7.6),
    ]);
    expect(await client.next()).toMatchObject({ asset_id: uuidFor('asset-in'), lat: 46.5 });
    expect(await client.next()).toMatchObject({ asset_id: uuidFor('asset-in'), lat: 46.6 });

    await client.request({ type: 'subscribe', channels: ['positions'], bbox: [170, -20, -170, -10] });
    await streams.positions([position(org.id, uuidFor('d-x'), uuidFor('asset-x'), -15, 160), position(org.id, uuidFor('d-x'), uuidFor('asset-x'), -15, -175)]);
    expect(await client.next()).toMatchObject({ asset_id: uuidFor('asset-x'), lon: -175 });
    expect(client.ofType('position').map((p) => p.asset_id)).toEqual([uuidFor('asset-in'), uuidFor('asset-in'), uuidFor('asset-x')]);
  });
});

describe('tenants', () => {
  it("shows a client its own tenant's positions and events only", async () => {
    const mine = await connect();
    const theirs = await connect(await sessionToken(db.config, db.owner, otherOrg));
    for (const client of [mine, theirs]) await client.request({ type: 'subscribe', channels: ['positions', 'events'] });

    await streams.positions([position(org.id, uuidFor('d-1'), uuidFor('a-1'), 10, 10)]);
    await streams.event(org.id, 'asset.geofence_breach', { asset_id: uuidFor('a-1') });
    await mine.next((m) => m.type === 'event');
    // Their own data comes after ours on the same reader: anything of ours would have reached them first.
    await streams.positions([position(otherOrg.id, uuidFor('d-2'), uuidFor('a-2'), 20, 20)]);
    await streams.event(otherOrg.id, 'work_order.created', { id: 'theirs' });
    await theirs.next((m) => m.type === 'event');

    expect(theirs.received.map((m) => [m.type, m.tenant_id ?? m.asset_id])).toEqual([['position', uuidFor('a-2')], ['event', otherOrg.id]]);
    expect(mine.received.map((m) => [m.type, m.tenant_id ?? m.asset_id])).toEqual([['position', uuidFor('a-1')], ['event', org.id]]);
  });
});

describe('events', () => {
  it('delivers an event with the stream id and the envelope', async () => {
    const client = await connect();
    await client.request({ type: 'subscribe', channels: ['events'] });
    const data = { asset_id: uuidFor('a-1'), device_id: uuidFor('d-1'), geofence_id: 'g-1', geofence_name: 'Yard', lat: 1, lon: 2, ts: '2025-01-01T00:00:00.000Z' };
    const id = await streams.event(org.id, 'asset.geofence_breach', data, '42');
    const event = await client.next();
    expect(event).toEqual({ type: 'event', id, event: 'asset.geofence_breach', tenant_id: org.id, occurred_at: expect.any(String), data });
  });

  it('replays exactly the events after since, then the live ones', async () => {
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) ids.push(await streams.event(org.id, 'work_order.created', { n: i }));
    const client = await connect();
    client.send({ type: 'subscribe', channels: ['events'], since: ids[1] });
    for (let i = 6; i <= 8; i++) ids.push(await streams.event(org.id, 'work_order.created', { n: i }));
    const last = await client.next((m) => m.id === ids[7]);
    expect(last).toMatchObject({ data: { n: 8 } });
    expect(client.ofType('event').map((m) => m.id)).toEqual(ids.slice(2));
  });

  it('replays from the events table what the stream has trimmed', async () => {
    const tenant = await createOrg(db.owner, 'team');
    const ids: string[] = [];
    for (let i = 1; i <= 6; i++) {
      const occurredAt = new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString();
      const id = (await streams.redis.xadd(streams.names.events(tenant.id), '*', 'p',
        JSON.stringify({ id: String(i), event: 'quote.sent', tenant_id: tenant.id, occurred_at: occurredAt, data: { n: i } })))!;
      ids.push(id);
      // What the relay leaves behind: the row with the stream id it got.
      await asTenant(db.owner, tenant.id, (c) => c.query(
        `insert into events (tenant_id, type, occurred_at, data, idempotency_key, stream_id, published_at)
         values ($1, 'quote.sent', $2, $3, $4, $5, now())`,
        [tenant.id, occurredAt, { n: i }, `k${i}`, id],
      ));
    }
    await streams.redis.xtrim(streams.names.events(tenant.id), 'MAXLEN', 2);

    const client = await connect(await sessionToken(db.config, db.owner, tenant));
    client.send({ type: 'subscribe', channels: ['events'], since: ids[0] });
    await client.next((m) => m.id === ids[5]);
    const live = await streams.event(tenant.id, 'quote.accepted', { n: 7 });
    await client.next((m) => m.id === live);
    const events = client.ofType('event');
    expect(events.map((m) => m.id)).toEqual([...ids.slice(1), live]);
    expect(events.map((m) => (m.data as { n: number }).n)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(events[0]).toEqual({ type: 'event', id: ids[1], event: 'quote.sent', tenant_id: tenant.id, occurred_at: '2025-01-01T00:00:02.000Z', data: { n: 2 } });
  });

  it('replays nothing for a tenant without events, then goes live', async () => {
    const tenant = await createOrg(db.owner, 'team');
    const client = await connect(await sessionToken(db.config, db.owner, tenant));
    client.send({ type: 'subscribe', channels: ['events'], since: '0-0' });
    const id = await streams.event(tenant.id, 'work_order.created');
    expect(await client.next()).toMatchObject({ type: 'event', id });
    expect(client.received).toHaveLength(1);
  });
});

describe('processes', () => {
  it('lets several realtime processes serve their own clients from the shared streams', async () => {
    const second = await startRoles({ ...db.config, MIGRATE_ON_START: false }, ['realtime']);
    try {
      const here = await connect();
      const there = await LiveClient.connect(liveUrl(second.realtimePort!, token));
      clients.push(there);
      for (const client of [here, there]) await client.request({ type: 'subscribe', channels: ['positions', 'events'] });
      await streams.positions([position(org.id, uuidFor('d-both'), uuidFor('a-both'), 12, 34)]);
      const id = await streams.event(org.id, 'work_order.assigned');
      for (const client of [here, there]) {
        expect(await client.next()).toMatchObject({ type: 'position', asset_id: uuidFor('a-both'), lat: 12, lon: 34 });
        expect(await client.next()).toMatchObject({ type: 'event', id });
      }
    } finally {
      await second.close();
    }
  });

  it('starts positions from the subscribe on, also after every position subscriber of the process has left', async () => {
    const fresh = await startRoles({ ...db.config, MIGRATE_ON_START: false }, ['realtime']); // a reader of its own
    try {
      const first = await LiveClient.connect(liveUrl(fresh.realtimePort!, token));
      clients.push(first);
      await first.request({ type: 'subscribe', channels: ['positions', 'events'] });
      await streams.positions([position(org.id, uuidFor('d-turn'), uuidFor('a-turn'), 1, 1)]);
      expect(await first.next()).toMatchObject({ type: 'position', lat: 1 });
      await first.request({ type: 'unsubscribe', channels: ['positions'] }); // no position subscriber left here

      await streams.positions([position(org.id, uuidFor('d-turn'), uuidFor('a-turn'), 2, 2)]);
      const second = await LiveClient.connect(liveUrl(fresh.realtimePort!, token));
      clients.push(second);
      await second.request({ type: 'subscribe', channels: ['positions'] });
      await streams.positions([position(org.id, uuidFor('d-turn'), uuidFor('a-turn'), 3, 3)]);
      const id = await streams.event(org.id, 'work_order.created');
      expect(await first.next()).toMatchObject({ type: 'event', id });
      expect(await second.next()).toMatchObject({ type: 'position', lat: 3 }); // not the one from before its subscribe
      expect(first.ofType('position').map((p) => p.lat)).toEqual([1]);
    } finally {
      await fresh.close();
    }
  });

  it('exposes its metrics on the realtime port', async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const name of ['fieldops_realtime_sockets', 'fieldops_realtime_deliveries_total', 'fieldops_realtime_conflated_positions_total', 'fieldops_realtime_closed_slow_total']) {
      expect(text).toContain(`# TYPE ${name}`);
    }
    expect(text).toMatch(/fieldops_realtime_deliveries_total\{kind="position"\} [1-9]/);
  });

  it('ends a session socket when its token expires (4001)', async () => {
    // Expiry is in whole seconds: a 1 s token signed late in a second lives a few milliseconds, less than an upgrade takes.
    const client = await connect(await sessionToken(db.config, db.owner, org, ['live.read'], 3));
    expect(await client.closed).toEqual({ code: 4001, reason: 'token expired' });
  });
});

describe('client messages', () => {
  it('answers a bad message with an error and keeps the socket open', async () => {
    const client = await connect();
    client.send('not json');
    expect(await client.next()).toEqual({ type: 'error', error: { code: 'bad_request', message: expect.any(String) } });
    client.send({ type: 'subscribe', channels: ['weather'] });
    expect(await client.next()).toMatchObject({ type: 'error', error: { code: 'bad_request' } });
    client.send({ type: 'subscribe', channels: ['events'], since: 'yesterday' });
    expect(await client.next()).toMatchObject({ type: 'error', error: { code: 'bad_request' } });
    client.send({ type: 'subscribe', channels: ['positions'], bbox: [1, 2, 3] });
    expect(await client.next()).toMatchObject({ type: 'error', error: { code: 'bad_request' } });

    await client.request({ type: 'subscribe', channels: ['events'] });
    const id = await streams.event(org.id, 'work_order.started');
    expect(await client.next()).toMatchObject({ type: 'event', id });
  });
});
