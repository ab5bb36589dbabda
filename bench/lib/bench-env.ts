import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig, requireServers, type ServerConfig } from '../../services/shared/config.js';
import { migrate } from '../../services/shared/migrate.js';
import { createPool, withTenant } from '../../services/shared/db.js';
import { deleteKeysWithPrefix } from '../../services/shared/redis-bus.js';
import { randomSecret, sha256 } from '../../services/shared/secrets.js';
import { createTenant } from '../../services/shared/tenants.js';

const benchDir = dirname(dirname(fileURLToPath(import.meta.url)));

/** A bench run's own database and Redis prefix, migrated; `close()` drops both. */
export interface BenchDatabase {
  /** The environment the server under test is started with. */
  env: Record<string, string>;
  config: ServerConfig;
  /** The owner's pool, for seeding and counting. */
  owner: pg.Pool;
  close(): Promise<void>;
}

export async function createBenchDatabase(overrides: Record<string, string>): Promise<BenchDatabase> {
  const id = randomBytes(4).toString('hex');
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/fieldops');
  url.pathname = `/fieldops_bench_${id}`;
  const env: Record<string, string> = {
    DATABASE_URL: url.toString(),
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_PREFIX: `bench${id}:`,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'error',
    MIGRATE_ON_START: 'false',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'fieldops-bench-')),
    ...overrides,
  };
  const config = requireServers(loadConfig(env));
  await migrate(config);
  const owner = createPool(config.DATABASE_URL, 2, 'fieldops-bench');
  return {
    env,
    config,
    owner,
    async close() {
      await owner.end();
      await dropDatabase(config.DATABASE_URL);
      await deleteKeysWithPrefix(config.REDIS_URL, config.REDIS_PREFIX).catch(() => {});
      // Files the server stored (inspection photos) go with the run.
      rmSync(env.DATA_DIR!, { recursive: true, force: true });
    },
  };
}

async function dropDatabase(url: string): Promise<void> {
  const admin = new URL(url);
  const name = admin.pathname.slice(1);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`).catch(() => {});
  await client.end();
}

/**
 * Forks a bench server script (path relative to bench/) under tsx and waits for its first message, which
 * says where it listens. BENCH_CPU_PROFILE=dir writes a V8 CPU profile of it (open it in Chrome DevTools).
 */
export async function startBenchServer<Ready>(script: string, env: Record<string, string>): Promise<{ child: ChildProcess; ready: Ready }> {
  const profile = process.env.BENCH_CPU_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE}`] : [];
  const child = fork(join(benchDir, script), [], {
    execArgv: ['--import', 'tsx', ...profile], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<Ready>((resolve, reject) => {
    child.once('message', (msg: Ready) => resolve(msg));
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it was ready`)));
  });
  return { child, ready };
}

/** SIGTERM (the server flushes and exits), SIGKILL only past 20 s. */
export async function stopBenchServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timeout = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timeout);
}

/** The admin of every bench organization (the API bench signs in as it). */
export const BENCH_ADMIN = { email: 'bench@example.com', password: 'bench-password-123' };

/** A session token of the bench organization's admin, from the API at `base`. */
export async function login(base: string, orgId: string): Promise<string> {
  const res = await fetch(`${base}/v1/auth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: BENCH_ADMIN.email, password: BENCH_ADMIN.password, organization_id: orgId }),
  });
  if (res.status !== 200) throw new Error(`login: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { data: { token: string } }).data.token;
}

export interface BenchTenant {
  tenantId: string;
  /** Trackers with their tokens, in creation order. */
  devices: { id: string; token: string }[];
}

/** An `unlimited` organization with `deviceCount` trackers. */
export async function seedBenchTenant(owner: pg.Pool, deviceCount: number): Promise<BenchTenant> {
  const db = await owner.connect();
  let tenantId: string;
  try {
    ({ id: tenantId } = await createTenant(db, {
      name: 'Bench Org', plan: 'unlimited', addons: [], adminEmail: BENCH_ADMIN.email, adminPassword: BENCH_ADMIN.password,
    }));
  } finally {
    db.release();
  }
  const tokens = Array.from({ length: deviceCount }, () => randomSecret(32));
  const rows = await withTenant(owner, tenantId, async (tx) => (await tx.query<{ id: string }>(
    `insert into devices (tenant_id, name, kind, token_hash)
     select $1, 'bench ' || n, 'tracker', h from unnest($2::bytea[]) with ordinality as t(h, n) order by n returning id`,
    [tenantId, tokens.map((t) => sha256(t))])).rows);
  return { tenantId, devices: rows.map((r, i) => ({ id: r.id, token: tokens[i]! })) };
}
