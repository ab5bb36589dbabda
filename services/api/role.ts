import type { AddressInfo } from 'node:net';
import { sessionTokens } from '../shared/jwt.js';
import { createAuthenticator } from '../shared/principal.js';
import type { RoleStarter } from '../shared/runtime.js';
import { buildApiApp } from './app.js';
import { DOCS_PATH } from './plugins/docs.js';

/** The API role: the Fastify app on API_PORT (0 picks a free port; the chosen one is logged). */
export const startRole: RoleStarter = async (runtime) => {
  const { config } = runtime;
  const log = runtime.log.child({ role: 'api' });
  const pool = runtime.pool('api');
  // Redis shared by every API process, or null: one process, the limiter counts in its memory.
  const redis = runtime.backplane.connectRateLimitStore();
  let redisDown = false;
  redis?.on('error', (err) => {
    if (!redisDown) log.warn({ err: err.message }, 'rate-limit store (Redis) unreachable; requests pass unlimited');
    redisDown = true;
  });
  redis?.on('ready', () => {
    if (redisDown) log.info('rate-limit store (Redis) reachable again');
    redisDown = false;
  });

  const tokens = sessionTokens(config.jwtSecret);
  const app = await buildApiApp({
    config, log, pool, redis, authenticator: createAuthenticator(pool, tokens), tokens,
    realtimePort: () => runtime.realtimePort(),
  });
  try {
    await app.listen({ host: config.HOST, port: config.API_PORT });
  } catch (err) {
    await app.close();
    redis?.disconnect();
    throw err;
  }
  const { port } = app.server.address() as AddressInfo;
  const base = `http://${displayHost(config.HOST)}:${port}`;
  log.info({ port, docs: `${base}${DOCS_PATH}` }, 'api listening');

  let closing: Promise<void> | null = null;
  return {
    name: 'api',
    endpoints: { api: base, docs: `${base}${DOCS_PATH}`, map: `${base}/map`, metrics: `${base}/metrics` },
    // app.close() stops accepting, waits for open connections and for every handler still running (its client
    // may be gone: plugins/in-flight.ts), then runs onClose; the pool is the runtime's, closed after this.
    close: () => (closing ??= app.close().then(() => redis?.quit().then(() => undefined, () => redis.disconnect()))),
  };
};

function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}
