import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoleName } from '../../services/start.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { RoleFleet } from '../support/role-processes.js';
import { waitFor } from '../support/wait.js';
import type { LiveClient } from '../realtime/live-client.js';
import { dispatcher, drillTenant, eventRows, positionCounts, signIn, type DrillTenant } from './deployment.js';
import { fixKey } from './stream-tail.js';
import { TrackerLoad } from './tracker-load.js';
import { startReceiver, type Receiver } from '../webhooks/receiver.js';

/** The deployment of docs/design.md "Roles and processes", one process per role copy. */
const ROLES: [RoleName, number][] = [
  ['ingest', 2],
  ['geofence', 2],
  ['realtime', 2],
  ['api', 1],
  ['webhooks', 1],
];
const FIXES = 9; // per device: 3 outside the fence, 3 inside, 3 outside again
const MQTT_DEVICES = 4;
const HTTP_DEVICES = 2;

let db: TestDatabase;
let fleet: RoleFleet;
let receiver: Receiver;
const sockets: LiveClient[] = [];

beforeAll(async () => {
  receiver = await startReceiver();
  db = await createTestDatabase();
  fleet = new RoleFleet(db.config, { WEBHOOK_ALLOW_HOSTS: '127.0.0.1', WEBHOOK_POLL_MS: '100' });
  await fleet.start(ROLES);
}, 120_000);

afterAll(async () => {
  for (const s of sockets) s.close();
  const exits = await fleet?.stopAll();
  await receiver?.close();
  await db?.drop();
  expect(exits?.every((e) => e.code === 0), fleet?.logs()).toBe(true);
});

/** Fix k of a tenant's device: outside, inside, then outside its fence. */
const whereFor = (t: DrillTenant) => (_device: number, k: number) =>
  k >= 3 && k < 6 ? t.inside : { lat: t.inside.lat + 0.01, lon: t.inside.lon + k / 100_000 };

async function eventIdsOf(t: DrillTenant): Promise<string[]> {
  const { rows } = await db.owner.query<{ id: string }>('select id::text from events where tenant_id = $1', [t.org.id]);
  return rows.map((r) => r.id).sort();
}

async function postFixes(ingestWs: string, token: string, fixes: object[]): Promise<void> {
  const base = ingestWs.replace(/^ws/, 'http').replace(/\/v1\/ingest$/, '');
  for (const fix of fixes) {
    const res = await fetch(`${base}/v1/ingest/gps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ fixes: [fix] }),
    });
    expect(res.status).toBeLessThan(300);
  }
}

describe('every role as its own processes: two ingest, two geofence, two realtime, one API, one webhooks worker', () => {
  it('delivers every position and event to each of its tenant\'s dispatchers, and every event to its webhook, exactly once; nothing to the other tenant', async () => {
    const [ingestA, ingestB] = fleet.of('ingest');
    const realtimes = fleet.of('realtime');
    const api = fleet.of('api')[0]!.endpoints.api!;
    const tenants = [await drillTenant(db.owner, MQTT_DEVICES + HTTP_DEVICES, 0), await drillTenant(db.owner, MQTT_DEVICES + HTTP_DEVICES, 0.5)];

    // Each tenant's dispatchers: one on each realtime node.
    const watchers = new Map<DrillTenant, LiveClient[]>();
    for (const t of tenants) {
      const token = await signIn(api, t.org);
      const mine = await Promise.all(realtimes.map((r) => dispatcher(r.endpoints.live!, token)));
      sockets.push(...mine);
      watchers.set(t, mine);
      const hook = await fetch(`${api}/v1/webhooks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ url: receiver.url(`/hooks/${t.org.id}`), events: ['*'] }),
      });
      expect(hook.status, await hook.clone().text()).toBe(201);
    }

    // Trackers over MQTT spread over both ingest nodes; others over HTTP, one per node.
    const sent = new Map<DrillTenant, Set<string>>();
    await Promise.all(tenants.map(async (t) => {
      const load = new TrackerLoad(t.devices.slice(0, MQTT_DEVICES), {
        mqttUrls: [ingestA!.endpoints.mqtt!, ingestB!.endpoints.mqtt!], intervalMs: 20, fixesPerDevice: FIXES, where: whereFor(t),
      });
      await load.start();
      const t0 = Date.now() - 60_000;
      const viaHttp = t.devices.slice(MQTT_DEVICES).map(async (device, i) => {
        const fixes = Array.from({ length: FIXES }, (_, k) => ({ ts_ms: t0 + k * 1000, ...whereFor(t)(i, k), accuracy_m: 5 }));
        await postFixes([ingestA, ingestB][i % 2]!.endpoints.ingest_ws!, device.token, fixes);
        return fixes.map((f) => fixKey(device.id, f.ts_ms));
      });
      const httpKeys = (await Promise.all(viaHttp)).flat();
      await load.finished();
      await load.stop();
      sent.set(t, new Set([...load.acknowledged, ...httpKeys]));
    }));

    for (const t of tenants) {
      const expected = sent.get(t)!;
      expect(expected.size).toBe(t.devices.length * FIXES);
      // Four events per asset: entered and breach going in, exited and breach coming out.
      const rows = await waitFor(async () => {
        const r = await eventRows(db.owner, t.org.id);
        return r.length === t.devices.length * 4 && r.every((e) => e.stream_id) && r;
      }, { what: 'every event written and streamed', timeoutMs: 30_000 });
      const streamIds = rows.map((e) => e.stream_id!);
      for (const socket of watchers.get(t)!) {
        await waitFor(() => positionCounts(socket).size === expected.size && socket.ofType('event').length >= streamIds.length,
          { what: `every position and event on a dispatcher of tenant ${t.org.id}`, timeoutMs: 30_000 });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 1000)); // room for a duplicate to show

    for (const t of tenants) {
      const expected = [...sent.get(t)!].sort();
      const streamIds = (await eventRows(db.owner, t.org.id)).map((e) => e.stream_id);
      for (const socket of watchers.get(t)!) {
        const counts = positionCounts(socket);
        expect([...counts.keys()].sort()).toEqual(expected);
        expect([...counts.values()].every((n) => n === 1)).toBe(true);
        const events = socket.ofType('event');
        expect(events.map((e) => e.id)).toEqual(streamIds); // once each, in order
        expect(events.every((e) => e.tenant_id === t.org.id)).toBe(true);
      }
      // Its webhook: each event once (by envelope id), and only its own.
      const eventIds = await eventIdsOf(t);
      const delivered = await waitFor(() => {
        const bodies = receiver.at(`/hooks/${t.org.id}`).map((r) => JSON.parse(r.body) as { id: string; tenant_id: string });
        return bodies.length >= eventIds.length && bodies;
      }, { what: `every event delivered to the webhook of tenant ${t.org.id}`, timeoutMs: 30_000 });
      expect(delivered.map((b) => b.id).sort()).toEqual(eventIds);
      expect(delivered.every((b) => b.tenant_id === t.org.id)).toBe(true);
    }
  });
});
