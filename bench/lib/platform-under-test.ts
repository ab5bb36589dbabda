/**
 * The whole platform for the path scenarios (e2e, soak), in one of three shapes:
 * - `split`: every role in a process of its own (`fieldops start --role X` each), on PostgreSQL and Redis;
 * - `one`: every role in one process (`fieldops start`, the default), on the same servers;
 * - `embedded`: every role in one process on the embedded defaults — no DATABASE_URL, no REDIS_URL: PGlite and the
 *   in-process bus, as `fieldops start` runs out of the box; the bench attaches to its database's socket to seed;
 * - `target`: a platform already running at `--target HOST` (ports MQTT_PORT, REALTIME_PORT, API_PORT or their
 *   defaults), seeded through its DATABASE_URL: nothing is started, and its processes are not sampled.
 * The first two run on a database and Redis prefix of their own, dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, type Pool } from '../../services/shared/db.js';
import { openEmbeddedDatabase } from '../../services/shared/database.js';
import { createLogger } from '../../services/shared/log.js';
import { availableRoles } from '../../services/start.js';
import { createBenchDatabase, startBenchServer, stopBenchServer } from './bench-env.js';
import type { PlatformReady } from './platform-server.js';

export type PlatformShape = 'split' | 'one' | 'embedded' | 'target';

export interface PlatformUnderTest {
  shape: PlatformShape;
  /** The database owner's pool, for seeding and reading back. */
  owner: Pool;
  mqtt: { host: string; port: number };
  /** The realtime listener: /v1/live, WebSocket and HTTP ingest, /metrics. */
  realtimePort: number;
  liveUrl: string;
  apiUrl: string;
  /** The server processes to sample (none for a target). */
  processes: { role: string; pid: number }[];
  close(): Promise<void>;
}

export const SHAPE_TITLES: Record<PlatformShape, string> = {
  split: 'every role in its own process',
  one: 'every role in one process (the default)',
  embedded: 'every role in one process on the embedded defaults',
  target: 'the running platform (--target)',
};

export async function startPlatformUnderTest(shape: PlatformShape, target: string | null, overrides: Record<string, string> = {}): Promise<PlatformUnderTest> {
  if (shape === 'target') return attachTarget(target ?? '127.0.0.1');
  if (shape === 'embedded') return startEmbedded(overrides);
  const bench = await createBenchDatabase({
    MQTT_PORT: '0', REALTIME_PORT: '0', API_PORT: '0', FIELDOPS_DEMO: '0',
    // The API signs sessions that the realtime processes check, and seals webhook secrets the webhooks role opens:
    // one secret each for all the processes (generated under DATA_DIR, they would race at a parallel start).
    JWT_SECRET: randomBytes(32).toString('hex'),
    WEBHOOK_SECRET_KEY: randomBytes(32).toString('hex'),
    // The webhook receiver of the bench listens on the loopback.
    WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
    ...overrides,
  });
  const groups = shape === 'one' ? [availableRoles()] : availableRoles().map((r) => [r]);
  const started: { role: string; child: ChildProcess; ready: PlatformReady }[] = [];
  // Side by side: roles migrate nothing here (MIGRATE_ON_START=false) and wait for nothing of each other.
  const starting = await Promise.allSettled(groups.map(async (roles) => {
    const { child, ready } = await startBenchServer<PlatformReady>('lib/platform-server.ts', { ...bench.env, BENCH_ROLES: roles.join(',') });
    started.push({ role: shape === 'one' ? 'all roles' : roles[0]!, child, ready });
  }));
  const failed = starting.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    for (const s of started) await stopBenchServer(s.child);
    await bench.close();
    throw failed.reason;
  }
  const find = (key: keyof PlatformReady) => started.find((s) => s.ready[key] !== undefined)?.ready;
  // The realtime role's port serves /v1/live; in the split shape the ingest process has a realtime port of its own.
  const live = started.find((s) => s.role === 'realtime' || s.role === 'all roles')!.ready;
  return {
    shape,
    owner: bench.owner,
    mqtt: { host: '127.0.0.1', port: find('mqttPort')!.mqttPort! },
    realtimePort: live.realtimePort!,
    liveUrl: `ws://127.0.0.1:${live.realtimePort}/v1/live`,
    apiUrl: find('api')!.api!.replace('localhost', '127.0.0.1'),
    processes: started.map((s) => ({ role: s.role, pid: s.child.pid! })),
    async close() {
      await Promise.all(started.map((s) => stopBenchServer(s.child)));
      await bench.close();
    },
  };
}

async function startEmbedded(overrides: Record<string, string>): Promise<PlatformUnderTest> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fieldops-bench-embedded-'));
  // Empty means unset (config.ts): the embedded database and the in-process bus, whatever the shell exports.
  const env = {
    DATABASE_URL: '', REDIS_URL: '', DATA_DIR: dataDir, HOST: '127.0.0.1', LOG_LEVEL: 'error', FIELDOPS_DEMO: '0',
    MQTT_PORT: '0', REALTIME_PORT: '0', API_PORT: '0', WEBHOOK_ALLOW_HOSTS: '127.0.0.1', ...overrides,
  };
  const { child, ready } = await startBenchServer<PlatformReady>('lib/platform-server.ts', env);
  const database = await openEmbeddedDatabase(dataDir, createLogger('error'), { attach: true });
  const owner = database.ownerPool(2);
  return {
    shape: 'embedded',
    owner,
    mqtt: { host: '127.0.0.1', port: ready.mqttPort! },
    realtimePort: ready.realtimePort!,
    liveUrl: `ws://127.0.0.1:${ready.realtimePort}/v1/live`,
    // Empty when BENCH_ROLES leaves the API out (the ingest bench's embedded run).
    apiUrl: ready.api?.replace('localhost', '127.0.0.1') ?? '',
    processes: [{ role: overrides.BENCH_ROLES ?? 'all roles', pid: child.pid! }],
    async close() {
      await owner.end();
      await database.close();
      await stopBenchServer(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function attachTarget(host: string): Promise<PlatformUnderTest> {
  const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
  const owner = createPool(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/fieldops', 2, 'fieldops-bench');
  return {
    shape: 'target',
    owner,
    mqtt: { host, port: port('MQTT_PORT', 1883) },
    realtimePort: port('REALTIME_PORT', 8081),
    liveUrl: `ws://${host}:${port('REALTIME_PORT', 8081)}/v1/live`,
    apiUrl: `http://${host}:${port('API_PORT', 8080)}`,
    processes: [],
    close: () => owner.end(),
  };
}
