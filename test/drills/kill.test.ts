import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { Drill } from './drill.js';

let drill: Drill;

beforeAll(async () => {
  drill = await Drill.start([['ingest', 2], ['geofence', 2], ['realtime', 1]], 24);
});

afterAll(async () => {
  await drill?.close();
});

describe('drill: SIGKILL a geofence worker and an ingest process under load', () => {
  it('the survivors take over within 60 s; no acknowledged fix lost, none doubled, no gap in the stream, every event once', async () => {
    drill.reportOnFailure();
    const socket = await drill.dispatcher();
    const load = await drill.load(100);
    await waitFor(() => load.count >= 500, { what: '500 fixes acknowledged', timeoutMs: 30_000 });
    const [deadGeofence, liveGeofence] = drill.fleet.of('geofence');
    const [deadIngest] = drill.fleet.of('ingest');
    // Both workers hold shards (a worker alone at first takes them all, and gives back its surplus as the other joins).
    const holds = (holders: (string | null)[], pid: number) => holders.some((h) => h?.includes(`-${pid}-`));
    await waitFor(async () => {
      const holders = await drill.leaseHolders();
      return holds(holders, deadGeofence!.pid) && holds(holders, liveGeofence!.pid);
    }, { what: 'both geofence workers to hold shards', timeoutMs: 30_000, intervalMs: 100 });

    drill.progress(`${load.count} fixes acknowledged; SIGKILL to geofence ${deadGeofence!.pid} and ingest ${deadIngest!.pid}`);
    const killedAt = Date.now();
    deadGeofence!.signal('SIGKILL');
    deadIngest!.signal('SIGKILL');
    await waitFor(async () => (await drill.leaseHolders()).every((h) => h?.includes(`-${liveGeofence!.pid}-`)),
      { what: 'the surviving geofence worker to hold every shard', timeoutMs: 60_000, intervalMs: 200 });
    const takeoverMs = Date.now() - killedAt;
    drill.progress(`the survivor holds every shard after ${takeoverMs} ms`);
    const atTakeover = load.count;
    await waitFor(() => load.count >= atTakeover + 500, { what: 'the load to go on through the surviving ingest node', timeoutMs: 30_000 });
    await load.stop();
    drill.progress(`load stopped at ${load.count} fixes`);
    expect(takeoverMs).toBeLessThan(60_000);

    await drill.expectEveryFixOnce(load.acknowledged, 'after the kills');
    const expected = await drill.expectedEvents();
    drill.progress(`every fix stored and streamed; waiting for ${expected.length} events`);
    expect(expected.length).toBeGreaterThan(0);
    const events = await drill.settledEvents(expected);
    expect(events.keys).toEqual(expected);
    await waitFor(() => socket.ofType('event').length >= expected.length, { what: 'every event on the dispatcher', timeoutMs: 30_000 });
    await new Promise((resolve) => setTimeout(resolve, 1000)); // room for a duplicate to show
    expect(socket.ofType('event').map((e) => e.id).sort()).toEqual([...events.streamIds].sort());
  });
});
