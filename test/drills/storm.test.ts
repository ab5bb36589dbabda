import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { seedBenchTenant, startBenchServer, stopBenchServer, type BenchTenant } from '../../bench/lib/bench-env.js';
import { reconnectStormInChild } from '../../bench/lib/mqtt-storm.js';
import type { PlatformReady } from '../../bench/lib/platform-server.js';

const DEVICES = 2000;

let db: TestDatabase;
let server: { child: ChildProcess; ready: PlatformReady };
let tenant: BenchTenant;

beforeAll(async () => {
  db = await createTestDatabase();
  const c = db.config;
  server = await startBenchServer<PlatformReady>('lib/platform-server.ts', {
    DATABASE_URL: c.DATABASE_URL, REDIS_URL: c.REDIS_URL, REDIS_PREFIX: c.REDIS_PREFIX, DATA_DIR: c.DATA_DIR, JWT_SECRET: c.jwtSecret,
    HOST: '127.0.0.1', MQTT_PORT: '0', REALTIME_PORT: '0', LOG_LEVEL: 'silent', FIELDOPS_DEMO: '0', MIGRATE_ON_START: 'false', BENCH_ROLES: 'ingest',
  });
  tenant = await seedBenchTenant(db.owner, DEVICES);
});

afterAll(async () => {
  if (server) await stopBenchServer(server.child);
  await db?.drop();
});

describe('drill: a reconnect storm', () => {
  // Timed, so it runs alone (test:drills) against the ingest role in its own process. The same generator at
  // 10,000 devices: `npm run bench -- storm`.
  it(`admits ${DEVICES} devices connecting at once, and commits each one's first fix, within 10 s`, async () => {
    const result = await reconnectStormInChild({
      host: '127.0.0.1', port: server.ready.mqttPort!, devices: tenant.devices, tsMs: Date.now() - 1000, timeoutMs: 10_000,
    });
    expect(result).toMatchObject({ devices: DEVICES, admitted: DEVICES, publishing: DEVICES, refused: {}, failed: 0 });
    expect(result.publishingMs).toBeLessThan(10_000);
    const { rows } = await db.owner.query<{ n: string }>('select count(*) as n from positions where tenant_id = $1', [tenant.tenantId]);
    expect(Number(rows[0]!.n)).toBe(DEVICES);
  }, 60_000);
});
