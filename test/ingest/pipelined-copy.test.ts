import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgErrorCode } from '../../services/shared/db.js';
import { PipelinedCopy } from '../../services/ingest/pipelined-copy.js';
import { TEST_PG_URL } from '../support/database.js';

let client: pg.Client;

beforeAll(async () => {
  client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  // Temporary tables: this session's own, gone with it.
  await client.query('create temp table copied (k int primary key, v text not null)');
  await client.query('create temp table marks (batch int primary key)');
});

afterAll(async () => {
  await client?.end();
});

function copy(batch: number, rows: [number, string][]): PipelinedCopy {
  const sut = new PipelinedCopy(`insert into marks values (${batch}); copy copied (k, v) from stdin`,
    Buffer.from(rows.map(([k, v]) => `${k}\t${v}\n`).join('')));
  client.query(sut);
  return sut;
}

async function stored(): Promise<{ keys: number[]; batches: number[] }> {
  const { rows: keys } = await client.query<{ k: number }>('select k from copied order by k');
  const { rows: batches } = await client.query<{ batch: number }>('select batch from marks order by batch');
  return { keys: keys.map((r) => r.k), batches: batches.map((r) => r.batch) };
}

describe('PipelinedCopy: the Query, the data and CopyDone in one write', () => {
  it('commits the rows together with the statement before the COPY, several copies queued on one connection', async () => {
    await Promise.all([copy(1, [[1, 'a'], [2, 'b']]).done, copy(2, [[3, 'c']]).done]);
    expect(await stored()).toEqual({ keys: [1, 2, 3], batches: [1, 2] });
  });

  it('rejects a COPY that meets a stored key with the server error, stores nothing of it, and the connection goes on', async () => {
    const failed = copy(3, [[4, 'd'], [1, 'again']]);
    await expect(failed.done).rejects.toSatisfy((err) => pgErrorCode(err) === '23505');
    expect(await stored()).toEqual({ keys: [1, 2, 3], batches: [1, 2] });
    await copy(4, [[4, 'd']]).done;
    expect(await stored()).toEqual({ keys: [1, 2, 3, 4], batches: [1, 2, 4] });
  });

  it('rejects when the statement before the COPY fails: the server drops the data sent ahead, and the connection goes on', async () => {
    const failed = copy(4, [[5, 'e']]); // batch 4 is taken: the insert fails before copy-in mode
    await expect(failed.done).rejects.toSatisfy((err) => pgErrorCode(err) === '23505');
    await copy(5, [[5, 'e']]).done;
    expect(await stored()).toEqual({ keys: [1, 2, 3, 4, 5], batches: [1, 2, 4, 5] });
  });
});
