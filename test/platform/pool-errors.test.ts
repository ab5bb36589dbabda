import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServicePool, type Pool } from '../../services/shared/db.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
let pool: Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createServicePool(db.config, 'worker', 2);
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('a pooled connection that dies while checked out (the server restarting, the network cut)', () => {
  // Found by the PostgreSQL restart drill: a geofence process ended on an `error` event nobody listened to.
  it('fails the holder\'s next statement instead of ending the process, and the pool goes on', async () => {
    const client = await pool.connect();
    const { rows: [{ pid }] } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
    await db.owner.query('select pg_terminate_backend($1)', [pid]);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the termination arrives while nobody is querying
    await expect(client.query('select 1')).rejects.toThrow();
    client.release(true);
    expect((await pool.query<{ one: number }>('select 1 as one')).rows[0]!.one).toBe(1);
  });
});
