/**
 * The whole platform for the path scenarios (e2e, soak), in one of three shapes:
 * - `split`: every role in a process of its own (`fieldops start --role X` each), on PostgreSQL and Redis;
 * - `one`: every role in one process (`fieldops start`, the default), on the same servers;
 * - `target`: a platform already running at `--target HOST` (ports MQTT_PORT, REALTIME_PORT, API_PORT or their
 *   defaults), seeded through its DATABASE_URL: nothing is started, and its processes are not sampled.
 * The first two run on a database and Redis prefix of their own, dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { createPool, type Pool } from '../../services/shared/db.js';
import { availableRoles } from '../../services/start.js';
import { createBenchDatabase, startBenchServer, stopBenchServer } from './bench-env.js';
import type { PlatformReady } from './platform-server.js';

export type PlatformShape = 'split' | 'one' | 'target';

export interface PlatformUnderTest {
  shape: PlatformShape;
  /** The database owner's pool, for seeding and reading back. */
  owner: Pool;
  mqtt: { host: string; port: number };
  liveUrl: string;
  apiUrl: string;
  /** The server processes to sample (none for a target). */
  processes: { role: string; pid: number }[];
  close(): Promise<void>;
}

export const SHAPE_TITLES: Record<PlatformShape, string> = {
  split: 'every role in its own process',
  one: 'every role in one process (the default)',
  target: 'the running platform (--target)',
};

export async function startPlatformUnderTest(shape: PlatformShape, target: string | null, overrides: Record<string, string> = {}): Promise<PlatformUnderTest> {
  if (shape === 'target') return attachTarget(target ?? '127.0.0.1');
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
    liveUrl: `ws://127.0.0.1:${live.realtimePort}/v1/live`,
    apiUrl: find('api')!.api!.replace('localhost', '127.0.0.1'),
    processes: started.map((s) => ({ role: s.role, pid: s.child.pid! })),
    async close() {
      await Promise.all(started.map((s) => stopBenchServer(s.child)));
      await bench.close();
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
    liveUrl: `ws://${host}:${port('REALTIME_PORT', 8081)}/v1/live`,
    apiUrl: `http://${host}:${port('API_PORT', 8080)}`,
    processes: [],
    close: () => owner.end(),
  };
}
