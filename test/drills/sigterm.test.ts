import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { sessionToken } from '../realtime/fixtures.js';
import { Drill } from './drill.js';

let drill: Drill;

beforeAll(async () => {
  drill = await Drill.start([['ingest', 2], ['geofence', 2], ['realtime', 1], ['api', 1], ['webhooks', 1]], 16);
});

afterAll(async () => {
  await drill?.close();
});

describe('drill: SIGTERM to every role under load', () => {
  it('each drains and exits 0; every acknowledged fix is stored and streamed once; the API answers its requests in flight', async () => {
    drill.reportOnFailure();
    const api = drill.fleet.of('api')[0]!.endpoints.api!;
    const token = await sessionToken(drill.db.config, drill.db.owner, drill.tenant.org, ['work_orders.read', 'work_orders.write']);
    const load = await drill.load(50);
    await waitFor(() => load.count >= 500, { what: '500 fixes acknowledged', timeoutMs: 30_000 });

    // REST clients keep asking while the API stops: each request gets an answer (not a 5xx) or a refused connection.
    let asking = true;
    const statuses: number[] = [];
    const askers = Array.from({ length: 4 }, async () => {
      while (asking) {
        const status = await fetch(`${api}/v1/work-orders`, { headers: { authorization: `Bearer ${token}` } })
          .then((r) => r.status, () => 0);
        statuses.push(status);
        if (status === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      }
    });

    await waitFor(() => statuses.filter((s) => s === 200).length >= 20, { what: `the API to answer (so far: ${statuses.slice(0, 5).join(', ')})`, timeoutMs: 15_000 });
    drill.progress(`${load.count} fixes acknowledged; SIGTERM to every process`);
    const stoppedAt = Date.now();
    const exits = await Promise.all(drill.fleet.processes.map(async (p) => {
      const exit = await p.stop(30_000);
      drill.progress(`${p.role} (pid ${p.pid}) exited ${exit.code ?? exit.signal} after ${Date.now() - stoppedAt} ms`);
      return exit;
    }));
    asking = false;
    await Promise.all(askers);
    await load.halt();

    expect(exits.map((e, i) => `${drill.fleet.processes[i]!.role}: ${e.code ?? e.signal}`))
      .toEqual(drill.fleet.processes.map((p) => `${p.role}: 0`));
    expect(statuses.filter((s) => s >= 500 && s !== 503), 'API answers while stopping').toEqual([]);
    await drill.expectEveryFixOnce(load.acknowledged, 'after SIGTERM');
  });
});
