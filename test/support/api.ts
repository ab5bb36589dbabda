import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import type { LightMyRequestResponse } from 'fastify';
import { buildApiApp, type ApiApp, type ApiDeps } from '../../services/api/app.js';
import type { ServerConfig } from '../../services/shared/config.js';
import { createServicePool, type Pool } from '../../services/shared/db.js';
import { sessionTokens, type SessionTokens } from '../../services/shared/jwt.js';
import { createLogger, type Logger } from '../../services/shared/log.js';
import { createAuthenticator } from '../../services/shared/principal.js';
import { createRedis } from '../../services/shared/redis-bus.js';

export interface TestApi {
  /** The app as production builds it; talk to it with `app.inject()` or `listen()`. */
  sut: ApiApp;
  /** The `fieldops_api` pool the app uses. */
  pool: Pool;
  redis: Redis;
  tokens: SessionTokens;
  /** Opens a real port (127.0.0.1, picked by the OS) and returns the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/** The API app on a test database's config: the same builder and the same service role as `fieldops start`. */
export async function buildTestApi(
  config: ServerConfig,
  options: { log?: Logger; poolSize?: number } & Partial<Pick<ApiDeps, 'mail' | 'files' | 'webhookResolver'>> = {},
): Promise<TestApi> {
  const pool = createServicePool(config, 'api', options.poolSize ?? 5);
  const redis = createRedis(config.REDIS_URL);
  redis.on('error', () => {});
  const tokens = sessionTokens(config.jwtSecret);
  const sut = await buildApiApp({
    config,
    log: options.log ?? createLogger(config.LOG_LEVEL, { role: 'api' }),
    pool,
    redis,
    authenticator: createAuthenticator(pool, tokens),
    tokens,
    mail: options.mail,
    files: options.files,
    webhookResolver: options.webhookResolver,
  });
  let closing: Promise<void> | null = null;
  return {
    sut,
    pool,
    redis,
    tokens,
    async listen() {
      await sut.listen({ host: '127.0.0.1', port: 0 });
      return `http://127.0.0.1:${(sut.server.address() as AddressInfo).port}`;
    },
    close: () => (closing ??= (async () => {
      await sut.close();
      await pool.end();
      await redis.quit().catch(() => redis.disconnect());
    })()),
  };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Signs in through the API and returns the session token. */
export async function login(api: TestApi, org: { id: string; adminEmail: string; adminPassword: string }, email = org.adminEmail, password = org.adminPassword): Promise<string> {
  const res = await api.sut.inject({ method: 'POST', url: '/v1/auth/token', payload: { email, password, organization_id: org.id } });
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`);
  return res.json().data.token as string;
}

/** The contract's error body, asserted loosely enough for `expect(errorOf(res)).toMatchObject(…)`. */
export function errorOf(res: LightMyRequestResponse): { code: string; message: string; request_id: string; issues: { path: string; message: string }[] } {
  return res.json().error;
}
