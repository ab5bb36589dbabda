import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const entry = fileURLToPath(new URL('../support/cli-entry.ts', import.meta.url));

describe('docker-compose.yml', () => {
  it('refuses to start without the operator\'s JWT secret and service password: no default for any secret', () => {
    const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    const secrets = [...compose.matchAll(/^\s*(JWT_SECRET|DATABASE_SERVICE_PASSWORD):\s*(.+)$/gm)].map((m) => ({ name: m[1]!, value: m[2]!.trim() }));
    expect(secrets.map((s) => s.name).sort()).toEqual(['DATABASE_SERVICE_PASSWORD', 'DATABASE_SERVICE_PASSWORD', 'JWT_SECRET']);
    // `${VAR:?message}`: compose stops with the message when VAR is unset or empty.
    for (const { name, value } of secrets) expect(value, name).toMatch(/^\$\{FIELDOPS_[A-Z_]+:\?[^}]+\}$/);
    expect(compose).not.toMatch(/change-me/);
  });
});

describe('fieldops command line', () => {
  let sut: TestDatabase;
  const fieldops = (args: string[]) =>
    run(process.execPath, ['--import', 'tsx', entry, ...args], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: sut.config.DATABASE_URL, REDIS_URL: sut.config.REDIS_URL, DATA_DIR: sut.config.DATA_DIR, LOG_LEVEL: 'silent' },
    });

  beforeAll(async () => { sut = await createTestDatabase(); });
  afterAll(async () => { await sut.drop(); });

  it('prints help', async () => {
    const { stdout } = await fieldops(['--help']);
    expect(stdout).toMatch(/fieldops migrate/);
    expect(stdout).toMatch(/tenant create/);
  });

  it('creates a tenant and prints its id on the first line', async () => {
    const { stdout } = await fieldops(['tenant', 'create', '--name', 'Acme Field', '--plan', 'team', '--addons', 'api',
      '--admin-email', 'boss@acme.test', '--admin-password', 'long-enough-pw']);
    const id = stdout.split('\n')[0]!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const { rows } = await sut.owner.query(
      "select set_config('app.tenant_id', $1, false), (select plan from organizations where id = $1::uuid) as plan, (select addons from organizations where id = $1::uuid) as addons",
      [id]);
    expect(rows[0]).toMatchObject({ plan: 'team', addons: ['api'] });
  });

  it('updates a tenant plan', async () => {
    const { stdout } = await fieldops(['tenant', 'create', '--name', 'Beta', '--plan', 'starter',
      '--admin-email', 'a@beta.test', '--admin-password', 'long-enough-pw']);
    const id = stdout.split('\n')[0]!;
    const updated = await fieldops(['tenant', 'update', id, '--plan', 'unlimited']);
    expect(JSON.parse(updated.stdout)).toMatchObject({ id, plan: 'unlimited' });
  });

  it('names the bad variable when the configuration is invalid', async () => {
    const failed = await run(process.execPath, ['--import', 'tsx', entry, 'migrate'], {
      cwd: root, env: { ...process.env, API_PORT: 'eighty' },
    }).catch((err: { code: number; stderr: string }) => err);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toMatch(/API_PORT must be integer/);
  });

  it('refuses to start or migrate with a known placeholder secret, naming the variable', async () => {
    const cases: [string[], Record<string, string>][] = [
      [['migrate'], { JWT_SECRET: 'change-me-to-a-long-random-secret-of-32-chars' }],
      [['start', '--role', 'api'], { DATABASE_SERVICE_PASSWORD: 'change-me-service' }],
      [['start', '--role', 'api'], { JWT_SECRET: 'x'.repeat(40), METRICS_TOKEN: 'changeme-changeme-changeme', WEBHOOK_SECRET_KEY: 'change-me-to-a-long-random-webhook-key-of-32-chars' }],
    ];
    await Promise.all(cases.map(async ([command, env]) => {
      const failed = await run(process.execPath, ['--import', 'tsx', entry, ...command], {
        cwd: root, timeout: 60_000,
        env: { ...process.env, DATABASE_URL: sut.config.DATABASE_URL, REDIS_URL: sut.config.REDIS_URL, DATA_DIR: sut.config.DATA_DIR, LOG_LEVEL: 'silent', API_PORT: '0', ...env },
      }).catch((err: { code: number; stderr: string }) => err);
      expect(failed, `${command[0]} ${JSON.stringify(env)}`).toMatchObject({ code: 1 });
      for (const name of Object.keys(env)) expect((failed as { stderr: string }).stderr).toContain(name);
      expect((failed as { stderr: string }).stderr).toMatch(/known placeholder/);
    }));
  }, 90_000);

  it('refuses an unknown plan with a clear message', async () => {
    const failed = await fieldops(['tenant', 'create', '--name', 'X', '--plan', 'gold', '--admin-email', 'x@x.test', '--admin-password', 'long-enough-pw'])
      .catch((err: { code: number; stderr: string }) => err);
    expect((failed as { stderr: string }).stderr).toMatch(/--plan must be one of starter, team, unlimited/);
  });
});

describe('fieldops start', () => {
  let sut: TestDatabase;
  beforeAll(async () => { sut = await createTestDatabase(); });
  afterAll(async () => { await sut.drop(); });

  it('runs every role, prints where they are, serves the API, and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, 'start'], {
      cwd: root,
      env: {
        ...process.env, DATABASE_URL: sut.config.DATABASE_URL, REDIS_URL: sut.config.REDIS_URL, DATA_DIR: sut.config.DATA_DIR, LOG_LEVEL: 'info',
        FIELDOPS_DEMO: '0',
        REDIS_PREFIX: sut.config.REDIS_PREFIX, API_PORT: '0', REALTIME_PORT: '0', MQTT_PORT: '0', HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await expect.poll(() => stdout, { timeout: 30_000, interval: 100 }).toMatch(/live\s+ws:\/\//);
    for (const endpoint of ['api', 'docs', 'map', 'mqtt', 'ingest_ws', 'live']) expect(stdout).toMatch(new RegExp(`^\\s+${endpoint}\\s`, 'm'));
    expect(stdout).toMatch(/^\s+database\s+PostgreSQL at 127\.0\.0\.1:5432\//m);
    expect(stdout).toMatch(/^\s+bus\s+Redis at 127\.0\.0\.1:6379/m);

    const api = stdout.match(/^\s+api\s+(http:\/\/\S+)/m)![1]!.replace('localhost', '127.0.0.1');
    const health = await fetch(`${api}/healthz`);
    expect(health.status).toBe(200);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toMatch(/"msg":"stopped"/);
  });
});
