import { Redis } from 'ioredis';
import { expect, onTestFailed } from 'vitest';
import type { RoleName } from '../../services/start.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { RoleFleet } from '../support/role-processes.js';
import { sessionToken } from '../realtime/fixtures.js';
import type { LiveClient } from '../realtime/live-client.js';
import { dispatcher, drillTenant, type DrillTenant } from './deployment.js';
import { startDrillServers, type DrillServers } from './private-servers.js';
import { fixKey, PositionTail } from './stream-tail.js';
import { TrackerLoad } from './tracker-load.js';

/** Fix k of a drill tracker is inside its tenant's fence during every other run of ten. */
export const insideAt = (k: number) => Math.floor(k / 10) % 2 === 1;

/**
 * One failure drill: private PostgreSQL and Redis (stopped at will), a migrated database, role processes,
 * a tenant whose trackers cross its fence, a tail of the position streams and a dispatcher.
 */
export class Drill {
  readonly tail: PositionTail;
  readonly sockets: LiveClient[] = [];
  private redisClient: Redis | null = null;
  private readonly startedAt = Date.now();

  private constructor(readonly servers: DrillServers, readonly db: TestDatabase, readonly fleet: RoleFleet, readonly tenant: DrillTenant) {
    this.tail = new PositionTail(db.config);
  }

  /** Call in the test: on its failure, the processes' warnings, errors and last log lines go to stderr. */
  reportOnFailure(): void {
    onTestFailed(() => { process.stderr.write(`\n--- role processes ---\n${this.fleet.summary()}\n`); });
  }

  static async start(roles: [RoleName, number][], devices: number, env: Record<string, string> = {}): Promise<Drill> {
    const servers = await startDrillServers();
    const db = await createTestDatabase({}, servers.servers);
    const fleet = new RoleFleet(db.config, env);
    try {
      await fleet.start(roles);
    } catch (err) {
      await fleet.stopAll();
      await db.drop().catch(() => {});
      await servers.stop();
      throw err;
    }
    return new Drill(servers, db, fleet, await drillTenant(db.owner, devices));
  }

  /** A line on stderr with the seconds since the drill began: where a slow or stuck drill is. */
  progress(message: string): void {
    process.stderr.write(`drill +${((Date.now() - this.startedAt) / 1000).toFixed(1)} s: ${message}\n`);
  }

  /** Trackers crossing the fence, spread over the ingest nodes, publishing one fix per `intervalMs` each. */
  async load(intervalMs: number): Promise<TrackerLoad> {
    const where = (_device: number, k: number) =>
      insideAt(k) ? this.tenant.inside : { lat: this.tenant.inside.lat + 0.01, lon: this.tenant.inside.lon + k / 100_000 };
    const load = new TrackerLoad(this.tenant.devices, { mqttUrls: this.fleet.of('ingest').map((p) => p.endpoints.mqtt!), intervalMs, where });
    await load.start();
    this.progress(`${this.tenant.devices.length} trackers connected`);
    return load;
  }

  /** A dispatcher of the tenant on the given realtime node (the first by default). */
  async dispatcher(since?: string, node = 0): Promise<LiveClient> {
    const token = await sessionToken(this.db.config, this.db.owner, this.tenant.org);
    const socket = await dispatcher(this.fleet.of('realtime')[node]!.endpoints.live!, token, since);
    this.sockets.push(socket);
    this.progress(`a dispatcher subscribed${since ? ` since ${since}` : ''}`);
    return socket;
  }

  redis(): Redis {
    this.redisClient ??= new Redis(this.db.config.REDIS_URL, { maxRetriesPerRequest: 1 }).on('error', () => {});
    return this.redisClient;
  }

  /** Holders of the `positions:{n}` shard leases (worker ids: `host-pid-random`). */
  async leaseHolders(): Promise<(string | null)[]> {
    const keys = Array.from({ length: this.db.config.POSITION_SHARDS }, (_, n) => `${this.db.config.REDIS_PREFIX}geofence:lease:${n}`);
    return this.redis().mget(...keys);
  }

  /** How many rows PostgreSQL holds per `device|ts` of the tenant's trackers. */
  async storedCounts(): Promise<Map<string, number>> {
    const { rows } = await this.db.owner.query<{ device_id: string; ts_ms: string; n: number }>(
      `select device_id, (extract(epoch from ts) * 1000)::bigint as ts_ms, count(*)::int as n from positions
       where device_id = any($1::uuid[]) group by 1, 2`, [this.tenant.devices.map((d) => d.id)]);
    return new Map(rows.map((r) => [fixKey(r.device_id, Number(r.ts_ms)), r.n]));
  }

  /**
   * Every acknowledged fix is stored once and streamed once (no loss, no double, no gap). With `atLeastOnce`,
   * a fix may reach the streams twice — where docs/design.md ("Streams": delivery is at least once, consumers
   * are idempotent) allows it after an outage: a replayed append that had landed, a retried commit's lookup.
   */
  async expectEveryFixOnce(acknowledged: Set<string>, what: string, { atLeastOnce = false } = {}): Promise<void> {
    const stored = await this.storedCounts();
    const missing = [...acknowledged].filter((k) => !stored.has(k));
    expect(missing, `${what}: acknowledged fixes not stored`).toEqual([]);
    expect([...stored.values()].filter((n) => n !== 1), `${what}: fixes stored twice`).toEqual([]);
    // Everything stored (acknowledged or not) reaches the streams, once.
    const keys = [...stored.keys()];
    const streamed = await waitForValue(() => {
      const counts = this.tail.counts();
      return keys.every((k) => counts.has(k)) ? counts : null;
    }, 60_000);
    const counts = streamed ?? this.tail.counts();
    expect(keys.filter((k) => !counts.has(k)), `${what}: stored fixes missing from the position streams`).toEqual([]);
    if (!atLeastOnce) expect([...counts.entries()].filter(([k, n]) => n !== 1 && stored.has(k)), `${what}: fixes streamed twice`).toEqual([]);
  }

  /** The fence events the stored fixes imply: entered and breach going in, exited and breach coming out, at the crossing fix. */
  async expectedEvents(): Promise<string[]> {
    const t0ByDevice = new Map<string, number[]>();
    for (const key of (await this.storedCounts()).keys()) {
      const [device, ts] = key.split('|');
      t0ByDevice.set(device!, [...(t0ByDevice.get(device!) ?? []), Number(ts)]);
    }
    const expected: string[] = [];
    for (const device of this.tenant.devices) {
      const times = (t0ByDevice.get(device.id) ?? []).sort((a, b) => a - b);
      let inside = false;
      for (const ts of times) {
        const k = Math.round((ts - times[0]!) / 1000);
        if (insideAt(k) === inside) continue;
        inside = insideAt(k);
        const iso = new Date(ts).toISOString();
        expected.push(`${inside ? 'asset.geofence_entered' : 'asset.geofence_exited'} ${device.assetId} ${iso}`, `asset.geofence_breach ${device.assetId} ${iso}`);
      }
    }
    return expected.sort();
  }

  /** The tenant's event rows as `type asset ts`, and their stream ids. */
  async events(): Promise<{ keys: string[]; streamIds: (string | null)[] }> {
    const { rows } = await this.db.owner.query<{ type: string; asset_id: string; ts: string; stream_id: string | null }>(
      `select type, asset_id, data->>'ts' as ts, stream_id from events where tenant_id = $1 order by id`, [this.tenant.org.id]);
    return { keys: rows.map((r) => `${r.type} ${r.asset_id} ${r.ts}`).sort(), streamIds: rows.map((r) => r.stream_id) };
  }

  /** Waits for the tenant's events to be all written (the `expected` ones) and streamed; says what is missing when they are not. */
  async settledEvents(expected: string[], timeoutMs = 60_000): Promise<{ keys: string[]; streamIds: (string | null)[] }> {
    let last = await this.events();
    const deadline = Date.now() + timeoutMs;
    while (!(last.keys.length >= expected.length && last.streamIds.every(Boolean))) {
      if (Date.now() > deadline) {
        const missing = expected.filter((k) => !last.keys.includes(k));
        throw new Error(`events not settled after ${timeoutMs} ms: ${last.keys.length} of ${expected.length} written, `
          + `${last.streamIds.filter((id) => !id).length} not streamed; missing e.g. ${missing.slice(0, 5).join(', ')}\n`
          + this.fleet.logs().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-40).join('\n'));
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
      last = await this.events();
    }
    return last;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.close();
    this.redisClient?.disconnect();
    await this.tail.close();
    await this.fleet.stopAll(15_000);
    await this.db.drop().catch(() => {});
    await this.servers.stop();
  }
}

async function waitForValue<T>(probe: () => T | null, timeoutMs: number): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== null || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
