import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildTestApi, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * Graceful shutdown of the API (docs/design.md, "Roles and processes"): closing the app waits for every
 * handler still running, even one whose client has gone, so that its database work is done before the
 * pool closes — found by the api bench, whose last phase left uploads committing after the pool had ended.
 */
let db: TestDatabase;
let api: TestApi;
let base: string;
let release: () => void;
let entered: Promise<void>;
let finished: Promise<string>;

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config);
  const gate = new Promise<void>((resolve) => { release = resolve; });
  let enter!: () => void;
  entered = new Promise<void>((resolve) => { enter = resolve; });
  let finish!: (outcome: string) => void;
  finished = new Promise<string>((resolve) => { finish = resolve; });
  // A handler like the inspection upload's: slow work first (the file), then its transaction.
  api.sut.post('/test/slow-write', { config: { public: true } }, async () => {
    enter();
    await gate;
    try {
      await api.sut.withTenant(randomUUID(), (tx) => tx.query('select 1'));
      finish('committed');
    } catch (err) {
      finish((err as Error).message);
    }
    return { ok: true };
  });
  base = await api.listen();
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

it('finishes a request whose client went away before closing the pool', async () => {
  const client = new AbortController();
  const request = fetch(`${base}/test/slow-write`, { method: 'POST', signal: client.signal }).catch(() => 'aborted');
  await entered;
  client.abort();
  expect(await request).toBe('aborted');

  let closed = false;
  const closing = api.close().then(() => { closed = true; });
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(closed).toBe(false);

  release();
  await closing;
  expect(await finished).toBe('committed');
});
