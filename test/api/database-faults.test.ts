import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { loadConfig, requireServers } from '../../services/shared/config.js';
import { createServicePool } from '../../services/shared/db.js';
import { bearer, buildTestApi, errorOf, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { waitFor } from '../support/wait.js';

/**
 * The database protects itself and the API says so (docs/design.md, "Reliability and security"): a
 * statement past the role's `statement_timeout` answers 503 `unavailable` in the error shape instead
 * of holding the connection; while PostgreSQL cannot be reached the API answers 503 (refused at once,
 * or after the pool's connect timeout when nothing answers) and recovers by itself once it is back.
 */

/** A TCP hop between the API and PostgreSQL that a test can cut (refuse or black-hole) and restore. */
class DatabaseLink {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  mode: 'up' | 'blackhole' = 'up';
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => {});
      if (this.mode === 'blackhole') return; // accepted, never answered
      const upstream = connect(this.target.port, this.target.host);
      this.sockets.add(upstream);
      upstream.on('close', () => { this.sockets.delete(upstream); client.destroy(); });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Refuses new connections and drops the open ones, as a stopped server does. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async close(): Promise<void> {
    await this.cut();
  }
}

let db: TestDatabase;
let link: DatabaseLink;
let api: TestApi;
let org: TestOrg;
let token: string;
const CONNECT_TIMEOUT_MS = 1_000;

beforeAll(async () => {
  db = await createTestDatabase();
  // Statements of the API role time out after 300 ms in this database (migration 011 sets 5 s).
  await db.owner.query(`alter role fieldops_api in database ${pg.escapeIdentifier(db.name)} set statement_timeout = '300ms'`);
  const direct = new URL(db.config.DATABASE_URL);
  link = new DatabaseLink({ host: direct.hostname, port: Number(direct.port || 5432) });
  await link.open();
  const viaLink = new URL(db.config.DATABASE_URL);
  viaLink.host = `127.0.0.1:${link.port}`;
  const config = requireServers(loadConfig({
    DATABASE_URL: viaLink.toString(),
    REDIS_URL: db.config.REDIS_URL,
    REDIS_PREFIX: db.config.REDIS_PREFIX,
    DATA_DIR: db.config.DATA_DIR,
    JWT_SECRET: db.config.jwtSecret,
    LOG_LEVEL: 'silent',
    HOST: '127.0.0.1',
    DATABASE_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
  }));
  api = await buildTestApi(config);
  org = await createOrg(db.owner, 'team');
  token = await login(api, org);
});

afterAll(async () => {
  await api?.close();
  await link?.close();
  await db?.drop();
});

const listDevices = () => api.sut.inject({ method: 'GET', url: '/v1/devices', headers: bearer(token) });

function expectUnavailable(res: Awaited<ReturnType<typeof listDevices>>): void {
  expect(res.statusCode).toBe(503);
  expect(errorOf(res)).toMatchObject({ code: 'unavailable', issues: [] });
  expect(errorOf(res).request_id).toBe(res.headers['x-request-id']);
  expect(res.body).not.toMatch(/statement|timeout|ECONN|postgres/i);
}

describe('the service roles', () => {
  it('log in with their statement and idle-in-transaction timeouts (migration 011, this database\'s own override first)', async () => {
    const shown: Record<string, [string, string]> = {};
    for (const role of ['api', 'ingest', 'worker'] as const) {
      const pool = createServicePool(db.config, role, 1);
      try {
        const { rows } = await pool.query<{ s: string; i: string }>(
          "select current_setting('statement_timeout') as s, current_setting('idle_in_transaction_session_timeout') as i");
        shown[role] = [rows[0]!.s, rows[0]!.i];
      } finally {
        await pool.end();
      }
    }
    expect(shown).toEqual({ api: ['300ms', '15s'], ingest: ['30s', '1min'], worker: ['1min', '1min'] });
  });
});

describe('a statement past the API role\'s statement_timeout', () => {
  it('answers 503 unavailable and frees the connection', async () => {
    expect((await listDevices()).statusCode).toBe(200);
    const holder = await db.owner.connect();
    try {
      await holder.query('begin');
      await holder.query('lock table devices in access exclusive mode');
      const startedMs = Date.now();
      const res = await listDevices();
      expectUnavailable(res);
      expect(Date.now() - startedMs).toBeLessThan(3_000);
    } finally {
      await holder.query('rollback');
      holder.release();
    }
    expect((await listDevices()).statusCode).toBe(200);
  });
});

describe('PostgreSQL out of reach', () => {
  it('answers 503 while connections are refused, and recovers by itself', async () => {
    await link.cut();
    await waitFor(async () => (await listDevices()).statusCode === 503, { timeoutMs: 5_000 });
    expectUnavailable(await listDevices());
    const health = await api.sut.inject({ method: 'GET', url: '/readyz' });
    expect(health.statusCode).toBe(503);
    await link.open();
    await waitFor(async () => (await listDevices()).statusCode === 200, { timeoutMs: 10_000 });
  });

  it('answers 503 within the connect timeout when the server accepts but never answers', async () => {
    link.mode = 'blackhole';
    await link.cut();
    await link.open();
    try {
      const startedMs = Date.now();
      expectUnavailable(await listDevices());
      expect(Date.now() - startedMs).toBeLessThan(CONNECT_TIMEOUT_MS + 2_000);
    } finally {
      link.mode = 'up';
      await link.cut();
      await link.open();
    }
    await waitFor(async () => (await listDevices()).statusCode === 200, { timeoutMs: 10_000 });
  });
});
