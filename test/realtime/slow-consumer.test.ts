import { register } from 'prom-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { PositionRecord } from '../../services/shared/contracts/stream-codec.js';
import type { Platform } from '../../services/start.js';
import { startRoles } from '../support/platform.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { LiveClient } from './live-client.js';
import { liveUrl, position, sessionToken, StreamWriter, uuidFor } from './fixtures.js';

let db: TestDatabase;
let platform: Platform;
let streams: StreamWriter;
let org: TestOrg;
let client: LiveClient;

const ASSETS = [uuidFor('asset-1'), uuidFor('asset-2'), uuidFor('asset-3')];

async function metric(name: string): Promise<number> {
  const values = (await register.getSingleMetric(name)?.get())?.values ?? [];
  return values.reduce((sum, v) => sum + v.value, 0);
}

/** Publishes until the server reports what `done` waits for; a stalled client's kernel buffers fill first. */
async function publishUntil(done: () => Promise<boolean>, publishRound: (round: number) => Promise<void>, maxRounds: number): Promise<number> {
  for (let round = 0; round < maxRounds; round++) {
    if (await done()) return round;
    await publishRound(round);
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  throw new Error(`not reached after ${maxRounds} rounds`);
}

/** Stalls the client while positions pour in; once resumed it must end with each asset's latest position. */
async function expectConflation(client: LiveClient): Promise<void> {
  const published: PositionRecord[] = [];
  const conflatedBefore = await metric('fieldops_realtime_conflated_positions_total');
  client.pauseReading();

  await publishUntil(
    async () => (await metric('fieldops_realtime_conflated_positions_total')) > conflatedBefore + 100,
    async (round) => {
      const batch = Array.from({ length: 600 }, (_, i) => position(org.id, uuidFor(`device-${i % 3}`), ASSETS[i % 3]!, round / 10, i / 10));
      published.push(...batch);
      await streams.positions(batch);
    },
    400,
  );
  const latest = ASSETS.map((asset, i) => position(org.id, uuidFor(`device-${i}`), asset, 89, 179 - i));
  published.push(...latest);
  await streams.positions(latest);
  await new Promise((resolve) => setTimeout(resolve, 100));

  client.resumeReading();
  // Held positions come in no particular order across assets: wait for each asset's latest.
  const latestSeen = new Set<unknown>();
  while (latestSeen.size < ASSETS.length) latestSeen.add((await client.next((m) => m.type === 'position' && m.lat === 89, 'the latest positions')).asset_id);
  for (const [i, asset] of ASSETS.entries()) {
    const mine = client.ofType('position').filter((m) => m.asset_id === asset);
    expect(mine.at(-1)).toMatchObject({ lat: 89, lon: 179 - i });
  }
  const received = client.ofType('position');
  expect(received.length).toBeLessThan(published.length);
  // Conflation skips positions but never reorders an asset's.
  for (const asset of ASSETS) {
    const order = received.filter((m) => m.asset_id === asset).map((m) => published.findIndex((p) => p.asset_id === asset && p.lat === m.lat && p.lon === m.lon));
    expect(order).toEqual([...order].sort((a, b) => a - b));
  }
}

beforeAll(async () => {
  db = await createTestDatabase({ REALTIME_CONFLATE_BYTES: '16384', REALTIME_MAX_BUFFER_BYTES: '262144' });
  platform = await startRoles(db.config, ['realtime']);
  streams = new StreamWriter(db.config);
  org = await createOrg(db.owner, 'team');
  client = await LiveClient.connect(liveUrl(platform.realtimePort!, await sessionToken(db.config, db.owner, org)));
});

afterAll(async () => {
  client?.close();
  await streams?.close();
  await platform?.close();
  await db?.drop();
});

it('conflates the box-filtered positions of a client that stops reading', async () => {
  const boxed = await LiveClient.connect(liveUrl(platform.realtimePort!, await sessionToken(db.config, db.owner, org)));
  try {
    await boxed.request({ type: 'subscribe', channels: ['positions'], bbox: [-180, -90, 180, 90] });
    await expectConflation(boxed);
  } finally {
    boxed.close();
  }
});

it('conflates positions for a client that stops reading, then closes it with 4008 when events pass the bound', async () => {
  await client.request({ type: 'subscribe', channels: ['positions', 'events'] });
  await expectConflation(client);

  // Events are never skipped: past the hard bound the client is told to resume with since.
  const eventIds: string[] = [];
  const closedBefore = await metric('fieldops_realtime_closed_slow_total');
  client.pauseReading();
  await publishUntil(
    async () => (await metric('fieldops_realtime_closed_slow_total')) > closedBefore,
    async () => {
      for (let i = 0; i < 20; i++) eventIds.push(await streams.event(org.id, 'inspection.submitted', { notes: 'x'.repeat(8000), n: eventIds.length }));
    },
    400,
  );
  for (let i = 0; i < 5; i++) eventIds.push(await streams.event(org.id, 'work_order.completed', { n: eventIds.length }));
  client.resumeReading();
  expect(await client.closed).toEqual({ code: 4008, reason: 'slow consumer: resume with since' });
  // What it got before the close is a gap-free prefix of what was published.
  const events = client.ofType('event').map((m) => m.id);
  expect(events.length).toBeGreaterThan(0);
  expect(events.length).toBeLessThan(eventIds.length);
  expect(events).toEqual(eventIds.slice(0, events.length));

  // Resuming from the last event seen gives the rest, in order.
  const resumed = await LiveClient.connect(liveUrl(platform.realtimePort!, await sessionToken(db.config, db.owner, org)));
  resumed.send({ type: 'subscribe', channels: ['events'], since: events.at(-1) });
  await resumed.next((m) => m.id === eventIds.at(-1));
  expect(resumed.ofType('event').map((m) => m.id)).toEqual(eventIds.slice(events.length));
  resumed.close();
});
