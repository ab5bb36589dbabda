import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { deleteKeysWithPrefix } from '../../services/shared/redis-bus.js';
import { loadConfig, requireServers, type ServerConfig } from '../../services/shared/config.js';
import { migrate } from '../../services/shared/migrate.js';

export const TEST_PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestDatabase {
  name: string;
  config: ServerConfig;
  /** A client connected as the owner (migrations' user), for arranging and inspecting data. */
  owner: pg.Pool;
  drop(): Promise<void>;
}

/** Where test databases live: the shared servers, or a test's private ones (drills that stop them). */
export interface TestServers {
  /** The owner's connection to the server's `postgres` database. */
  postgres: string;
  redis: string;
}

/**
 * A fresh database for one test file, migrated, with its own Redis key prefix and data dir, so that
 * files run in parallel and nothing depends on order. Ports are the caller's: pass 0 to pick free ones.
 */
export async function createTestDatabase(overrides: Record<string, string> = {}, servers: TestServers = { postgres: TEST_PG_URL, redis: TEST_REDIS_URL }): Promise<TestDatabase> {
  const id = randomBytes(5).toString('hex');
  const name = `fieldops_t_${id}`;
  const url = new URL(servers.postgres);
  url.pathname = `/${name}`;
  const config = requireServers(loadConfig({
    DATABASE_URL: url.toString(),
    REDIS_URL: servers.redis,
    REDIS_PREFIX: `t${id}:`,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'fieldops-')),
    JWT_SECRET: randomBytes(32).toString('hex'),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    API_PORT: '0',
    REALTIME_PORT: '0',
    MQTT_PORT: '0',
    HOST: '127.0.0.1',
    FIELDOPS_DEMO: '0',
    ...overrides,
  }));
  await migrate(config);
  const owner = new pg.Pool({ connectionString: config.DATABASE_URL, max: 4 });
  owner.on('error', () => {});
  return {
    name,
    config,
    owner,
    async drop() {
      await owner.end();
      await deleteKeysWithPrefix(config.REDIS_URL, config.REDIS_PREFIX).catch(() => {}); // Redis stopped by a test: nothing to clean
      const admin = new pg.Client({ connectionString: servers.postgres });
      await admin.connect();
      try {
        await admin.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}
