import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import type { Pool } from '../../shared/db.js';

export interface HealthOptions {
  pool: Pool;
  redis: Redis | null;
  timeoutMs?: number;
}

type Check = 'ok' | 'failed';

/** `GET /healthz`: the process answers. `GET /readyz`: it can do its job (database and Redis reachable). */
export const healthPlugin = fp<HealthOptions>(
  async (app, { pool, redis, timeoutMs = 2000 }) => {
    const routeConfig = { rateLimit: false as const };

    app.get('/healthz', { config: routeConfig, schema: { hide: true } }, async () => ({ status: 'ok' }));

    app.get('/readyz', { config: routeConfig, schema: { hide: true } }, async (_request, reply) => {
      const [database, cache] = await Promise.all([
        probe(() => pool.query('select 1'), timeoutMs),
        redis ? probe(() => redis.ping(), timeoutMs) : Promise.resolve<Check>('ok'),
      ]);
      const ready = database === 'ok' && cache === 'ok';
      reply.code(ready ? 200 : 503);
      return { status: ready ? 'ready' : 'unavailable', checks: { database, redis: redis ? cache : 'not used' } };
    });
  },
  { name: 'fieldops-health' },
);

async function probe(check: () => Promise<unknown>, timeoutMs: number): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
  });
  try {
    await Promise.race([check(), timeout]);
    return 'ok';
  } catch {
    return 'failed';
  } finally {
    clearTimeout(timer);
  }
}
