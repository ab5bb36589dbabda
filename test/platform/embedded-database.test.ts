import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../services/shared/config.js';
import { openEmbeddedDatabase, type Database } from '../../services/shared/database.js';
import { readAsTenant, withTenant, type Queryable } from '../../services/shared/db.js';
import { createLogger } from '../../services/shared/log.js';
import { MIGRATIONS_DIR, migrate } from '../../services/shared/migrate.js';
import { EMBEDDED_START_TIMEOUT_MS } from '../support/embedded.js';
import { createDevice, createOrg, type TestOrg } from '../support/factories.js';

/**
 * The embedded PostgreSQL (PGlite behind pglite-socket): the migrations apply unchanged, and the
 * service roles are as confined there as on a server, although every connection shares one session.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'fieldops-embedded-'));
const config = loadConfig({ DATA_DIR: dataDir, JWT_SECRET: 'x'.repeat(32), LOG_LEVEL: 'silent' });
const log = createLogger('silent');
let database: Database;
let owner: pg.Pool;
let api: pg.Pool;
let worker: pg.Pool;
let applied: string[];
let tenantA: TestOrg;
let tenantB: TestOrg;

beforeAll(async () => {
  database = await openEmbeddedDatabase(dataDir, log);
  ({ applied } = await migrate(config, log, database));
  owner = database.ownerPool(2);
  api = database.servicePool('api', 3);
  worker = database.servicePool('worker', 2);
  tenantA = await createOrg(owner);
  tenantB = await createOrg(owner);
  for (const tenant of [tenantA, tenantB]) {
    const device = await createDevice(owner, tenant.id);
    await owner.query(
      `insert into positions (tenant_id, device_id, ts, lat, lon) values ($1, $2, now(), 43.7, 7.25)`,
      [tenant.id, device.id],
    );
  }
}, EMBEDDED_START_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all([owner, api, worker].map((p) => p?.end()));
  await database?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** One transaction as the API role with the tenant set, as a request runs. */
async function asApi<T extends pg.QueryResultRow>(tenantId: string | null, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = await api.connect();
  try {
    await client.query('begin');
    if (tenantId) await client.query("select set_config('app.tenant_id', $1, true)", [tenantId]);
    const { rows } = await client.query<T>(sql, values);
    await client.query('commit');
    return rows;
  } catch (err) {
    await client.query('rollback');
    throw err;
  } finally {
    client.release();
  }
}

describe('the embedded database', () => {
  it('applies every migration, unchanged', () => {
    const files = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, '')).sort();
    expect(applied).toEqual(files);
  });

  it('keeps its socket in a directory only this user can enter', () => {
    expect(statSync(join(dataDir, 'run')).mode & 0o777).toBe(0o700);
  });

  it('runs a statement outside a transaction as the pool role, not as the login', async () => {
    const { rows } = await api.query<{ current_user: string; session_user: string }>('select current_user, session_user');
    expect(rows[0]).toEqual({ current_user: 'fieldops_api', session_user: 'postgres' });
    const asWorker = await worker.query<{ current_user: string }>('select current_user');
    expect(asWorker.rows[0]!.current_user).toBe('fieldops_worker');
  });
});

describe('the API role on the embedded database', () => {
  it('sees only its own tenant through row-level security', async () => {
    const orgs = await asApi<{ id: string }>(tenantA.id, 'select id from organizations');
    expect(orgs.map((o) => o.id)).toEqual([tenantA.id]);
    const devices = await asApi<{ tenant_id: string }>(tenantA.id, 'select tenant_id from devices');
    expect(devices.map((d) => d.tenant_id)).toEqual([tenantA.id]);
    expect(await asApi(tenantA.id, 'select id from devices where tenant_id = $1', [tenantB.id])).toEqual([]);
  });

  it('sees nothing without a tenant, even when another connection left one set for its session', async () => {
    // The owner sets a tenant for the whole (shared) session and a role, as careless code might.
    await owner.query("select set_config('app.tenant_id', $1, false)", [tenantB.id]);
    try {
      expect(await asApi(null, 'select id from organizations')).toEqual([]);
      expect(await api.query('select id from devices').then((r) => r.rows)).toEqual([]);
    } finally {
      await owner.query("select set_config('app.tenant_id', '', false)");
    }
  });

  it('is denied the base time-series tables and reads positions only through its tenant view', async () => {
    await expect(asApi(tenantA.id, 'select * from positions')).rejects.toMatchObject({ code: '42501' });
    await expect(asApi(tenantA.id, 'select * from punches')).rejects.toMatchObject({ code: '42501' });
    const rows = await asApi<{ tenant_id: string }>(tenantA.id, 'select tenant_id from positions_v');
    expect(rows.map((r) => r.tenant_id)).toEqual([tenantA.id]);
  });

  it('reads and writes as the tenant through the request path, in the pool role\'s own transaction', async () => {
    // The server's pipelined statements would bypass the seam (and run as its superuser): these must not.
    const tenantsSeen = (q: Queryable) => q.query<{ tenant_id: string }>('select tenant_id from devices').then((r) => r.rows.map((d) => d.tenant_id));
    expect(await readAsTenant(api, tenantA.id, tenantsSeen)).toEqual([tenantA.id]);
    expect(await withTenant(api, tenantB.id, tenantsSeen)).toEqual([tenantB.id]);
    await expect(readAsTenant(api, tenantA.id, (q) => q.query(`insert into assets (tenant_id, name) values ($1, 'from a read')`, [tenantA.id])))
      .rejects.toMatchObject({ code: '25006' });
  });

  it('cannot insert a row for another tenant', async () => {
    await expect(asApi(tenantA.id, `insert into assets (tenant_id, name) values ($1, 'smuggled')`, [tenantB.id]))
      .rejects.toMatchObject({ code: '42501' });
  });

  it('cannot change its role (the session user is the superuser, so the seam refuses it)', async () => {
    for (const sql of ['set role postgres', 'reset role', 'set session authorization postgres', "select set_config('role', 'postgres', false)"]) {
      await expect(api.query(sql), sql).rejects.toMatchObject({ code: '42501' });
    }
    await expect(api.query('select set_config($1, $2, true)', ['role', 'postgres'])).rejects.toMatchObject({ code: '42501' });
    const { rows } = await api.query<{ current_user: string }>('select current_user');
    expect(rows[0]!.current_user).toBe('fieldops_api');
  });
});

describe('one session shared by many connections', () => {
  it('keeps named prepared statements of different connections apart', async () => {
    const clients = await Promise.all([api.connect(), api.connect(), api.connect()]);
    try {
      for (let round = 0; round < 2; round++) {
        const results = await Promise.all(clients.map((c, i) =>
          c.query<{ v: number }>({ name: 'fieldops_probe', text: 'select $1::int * 2 as v', values: [i + round] })));
        expect(results.map((r) => r.rows[0]!.v)).toEqual([0, 2, 4].map((v) => v + round * 2));
      }
    } finally {
      clients.forEach((c) => c.release());
    }
  });

  it('delivers a change notice to a listener on another connection', async () => {
    const listener = database.serviceClient('worker', 'fieldops-test-listen');
    await listener.connect();
    try {
      const notices: string[] = [];
      listener.on('notification', (msg) => notices.push(`${msg.channel}:${msg.payload}`));
      await listener.query('listen device_changed');
      const device = await createDevice(owner, tenantA.id);
      // Disabled through the API role's pool: the notice reaches the committing connection, and is relayed.
      const client = await api.connect();
      try {
        await client.query('begin');
        await client.query("select set_config('app.tenant_id', $1, true)", [tenantA.id]);
        await client.query('update devices set disabled_at = now() where id = $1', [device.id]);
        await client.query('commit');
      } finally {
        client.release();
      }
      await expect.poll(() => notices, { timeout: 5000 }).toContain(`device_changed:${device.id}`);
      await listener.query('unlisten device_changed');
    } finally {
      await listener.end();
    }
  });

  it('serializes transactions: a statement of another connection waits for the commit', async () => {
    const holder = await worker.connect();
    try {
      await holder.query('begin');
      await holder.query(`update events set published_at = published_at where false`);
      let answered = false;
      const other = api.query('select 1').then(() => { answered = true; });
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(answered).toBe(false);
      await holder.query('commit');
      await other;
      expect(answered).toBe(true);
    } finally {
      holder.release();
    }
  });
});

describe('the data directory', () => {
  it('is served by one process at a time; administrative commands attach to the one serving it', async () => {
    await expect(openEmbeddedDatabase(dataDir, log)).rejects.toMatchObject({ code: 'data_dir_in_use' });
    const attached = await openEmbeddedDatabase(dataDir, log, { attach: true });
    const pool = attached.ownerPool(1);
    try {
      const { rows } = await pool.query<{ n: string }>('select count(*) as n from schema_migrations');
      expect(Number(rows[0]!.n)).toBe(applied.length);
    } finally {
      await pool.end();
      await attached.close(); // closes nothing of the server's
    }
    expect((await api.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('keeps the data across a restart', async () => {
    await Promise.all([owner, api, worker].map((p) => p.end()));
    await database.close();
    database = await openEmbeddedDatabase(dataDir, log);
    expect((await migrate(config, log, database)).applied).toEqual([]);
    owner = database.ownerPool(2);
    api = database.servicePool('api', 3);
    worker = database.servicePool('worker', 2);
    const orgs = await asApi<{ id: string; name: string }>(tenantA.id, 'select id, name from organizations');
    expect(orgs).toEqual([{ id: tenantA.id, name: tenantA.name }]);
  }, 120_000);
});
