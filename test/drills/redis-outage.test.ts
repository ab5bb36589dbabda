import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { Drill } from './drill.js';

let drill: Drill;

beforeAll(async () => {
  drill = await Drill.start([['ingest', 2], ['geofence', 2], ['realtime', 1]], 16);
});

afterAll(async () => {
  await drill?.close();
});

const OUTAGE_MS = 30_000;

describe('drill: Redis stopped for 30 s under load', () => {
  it('ingest keeps committing, the streams catch up, a dispatcher resumes with since: nothing lost, nothing twice', async () => {
    drill.reportOnFailure();
    const before = await drill.dispatcher();
    const load = await drill.load(100);
    await waitFor(() => before.ofType('event').length >= 4, { what: 'the first events on the dispatcher', timeoutMs: 30_000 });

    drill.progress(`${load.count} fixes acknowledged; stopping Redis`);
    const restarted = drill.servers.redis.restart(OUTAGE_MS);
    await waitFor(async () => !(await drill.redis().ping().catch(() => null)), 'Redis to be down');
    before.close();
    const seenBefore = before.ofType('event').map((e) => String(e.id));
    const atOutage = load.count;
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS / 2));
    expect(load.count, 'fixes acknowledged while Redis is down').toBeGreaterThan(atOutage + 100);
    await restarted;
    drill.progress(`Redis back; ${load.count} fixes acknowledged`);

    const after = await drill.dispatcher(seenBefore.at(-1));
    const atReturn = load.count;
    await waitFor(() => load.count >= atReturn + 300, { what: 'the load to go on after Redis came back', timeoutMs: 30_000 });
    await load.stop();
    drill.progress(`load stopped at ${load.count} fixes`);

    await drill.expectEveryFixOnce(load.acknowledged, 'after the Redis outage', { atLeastOnce: true });
    const expected = await drill.expectedEvents();
    drill.progress(`every fix stored and streamed; waiting for ${expected.length} events`);
    const events = await drill.settledEvents(expected);
    expect(events.keys).toEqual(expected);
    const lastId = events.streamIds.at(-1);
    await waitFor(() => after.ofType('event').some((e) => e.id === lastId), { what: 'the last event on the resumed dispatcher', timeoutMs: 30_000 });
    await new Promise((resolve) => setTimeout(resolve, 1000)); // room for a duplicate to show
    const seen = [...seenBefore, ...after.ofType('event').map((e) => String(e.id))];
    expect(seen.sort()).toEqual([...events.streamIds].map(String).sort());
  });
});
