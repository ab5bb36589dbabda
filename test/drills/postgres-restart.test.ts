import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { sessionToken } from '../realtime/fixtures.js';
import { expectErrorShape } from '../fuzz/contract-answers.js';
import { Drill } from './drill.js';

let drill: Drill;

beforeAll(async () => {
  drill = await Drill.start([['ingest', 2], ['geofence', 1], ['realtime', 1], ['api', 1]], 16);
});

afterAll(async () => {
  await drill?.close();
});

const DOWN_MS = 10_000;

describe('drill: PostgreSQL restarted under load', () => {
  it('stores QoS 1 retransmissions once, answers 503 in the error shape while down, and recovers by itself', async () => {
    drill.reportOnFailure();
    const api = drill.fleet.of('api')[0]!.endpoints.api!;
    const token = await sessionToken(drill.db.config, drill.db.owner, drill.tenant.org, ['work_orders.read', 'live.read', 'events.read']);
    const list = async () => {
      const res = await fetch(`${api}/v1/work-orders`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: await res.text() };
    };
    expect((await list()).status).toBe(200);
    const load = await drill.load(100);
    await waitFor(() => load.count >= 300, { what: '300 fixes acknowledged', timeoutMs: 30_000 });

    drill.progress(`${load.count} fixes acknowledged; restarting PostgreSQL (down ${DOWN_MS} ms)`);
    const restarted = drill.servers.postgres.restart(DOWN_MS);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const cut = load.cutConnections();
    drill.progress(`cut ${cut} tracker connections while PostgreSQL is down`);
    const whileDown = await list();
    expect(whileDown.status, whileDown.body).toBe(503);
    expectErrorShape(JSON.parse(whileDown.body), 503, whileDown.body);
    expect(JSON.parse(whileDown.body).error.code).toBe('unavailable');
    await restarted;
    drill.progress(`PostgreSQL back; ${load.count} fixes acknowledged`);

    await waitFor(async () => (await list()).status === 200, { what: 'the API to answer again by itself', timeoutMs: 30_000 });
    const atReturn = load.count;
    await waitFor(() => load.count >= atReturn + 300, { what: 'the load to go on after PostgreSQL came back', timeoutMs: 60_000 });
    await load.stop();
    drill.progress(`load stopped at ${load.count} fixes`);
    const exited = drill.fleet.processes.filter((p) => p.exitCode() !== null);
    expect(exited.map((p) => p.role), `processes that exited:\n${exited.map((p) => p.logs().split('\n').slice(-30).join('\n')).join('\n')}`).toEqual([]);

    // Stored once; streamed at least once: a commit retried across the restart cannot tell its own lost first
    // attempt from the retransmission another node stored meanwhile, and streams what it finds (ingest/batcher.ts).
    await drill.expectEveryFixOnce(load.acknowledged, 'after the PostgreSQL restart', { atLeastOnce: true });
    const expected = await drill.expectedEvents();
    drill.progress(`every fix stored and streamed; waiting for ${expected.length} events`);
    const events = await drill.settledEvents(expected);
    expect(events.keys).toEqual(expected);
  });
});
