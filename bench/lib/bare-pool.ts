import type pg from 'pg';
import { createPool } from '../../services/shared/db.js';
import { Histogram } from './histogram.js';

/**
 * A bare-`pg` baseline: `callers` concurrent loops, for `seconds`, each call one statement on a plain pool
 * of `poolSize` connections (one round trip: no transaction, no tenant setting, no RLS). `call` runs the
 * n-th statement and throws if its answer is wrong, which counts as an error.
 */
export async function bareStatements(url: string, poolSize: number, callers: number, seconds: number, call: (pool: pg.Pool, n: number) => Promise<void>) {
  const pool = createPool(url, poolSize, 'fieldops-bench-bare');
  const histogram = new Histogram();
  const deadline = Date.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  let n = 0;
  try {
    await Promise.all(Array.from({ length: callers }, async () => {
      while (Date.now() < deadline) {
        const started = process.hrtime.bigint();
        try {
          await call(pool, n++);
          done++;
        } catch {
          errors++;
        }
        histogram.record(Number(process.hrtime.bigint() - started) / 1000);
      }
    }));
  } finally {
    await pool.end();
  }
  return { reqPerS: Math.round(done / seconds), ...histogram.summary(), requests: done, non2xx: 0, errors };
}
