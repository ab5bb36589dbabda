import { cachingAuthenticator } from '../shared/credential-cache.js';
import { loginAttempts } from '../shared/login-attempts.js';
import { createAuthenticator } from '../shared/principal.js';
import { sessionTokens } from '../shared/jwt.js';
import type { RoleStarter } from '../shared/runtime.js';
import { eventReplay } from './event-replay.js';
import { liveAuthorizer, liveCredentialCheck } from './live-auth.js';
import { CredentialSockets } from './credential-sockets.js';
import { LiveHub } from './live-hub.js';
import { registerLiveRoute } from './live-route.js';
import { liveMetrics } from './metrics.js';
import { LiveStreamReader } from './stream-reader.js';

/** Live events held for one socket while its `since` replay reads; past this it is closed as slow (4008). */
const MAX_QUEUED_EVENTS = 10_000;

/**
 * The realtime role: `/v1/live` on the shared realtime port, fed by one blocking stream reader.
 * Roles share nothing in memory, so several realtime processes each serve their own sockets.
 */
export const startRole: RoleStarter = async (runtime) => {
  const { config } = runtime;
  const log = runtime.log.child({ role: 'realtime' });
  const server = runtime.realtimeServer();
  const tokens = sessionTokens(config.jwtSecret);

  const reader = new LiveStreamReader({
    // A bus of its own: its blocking XREAD must neither wait behind nor hold up other roles' commands.
    createBus: () => runtime.backplane.connectBus(),
    lookups: runtime.bus(),
    streams: runtime.streams,
    log,
  });
  // Refused credentials are remembered and limited per address as in the API (services/shared/credential-cache.ts);
  // valid ones are not kept (ttlMs 0), so a revocation made through any API process is seen at the next upgrade.
  const failureStore = runtime.backplane.connectRateLimitStore();
  failureStore?.on('error', () => {}); // counted in this process while Redis is away (login-attempts.ts)
  const authorize = liveAuthorizer(cachingAuthenticator(createAuthenticator(runtime.pool('api'), tokens), {
    ttlMs: 0,
    failures: loginAttempts({
      redis: failureStore, prefix: `${config.REDIS_PREFIX}authfail:`, max: config.AUTH_FAILURES_PER_MIN, windowMs: 60_000, log,
    }),
  }));
  const credentialSockets = new CredentialSockets(
    liveCredentialCheck({ authorize, tokens, pool: runtime.pool('api'), log }), log, config.REALTIME_CREDENTIALS_RECHECK_MS);
  const hub = new LiveHub({
    credentialSockets,
    app: server.app,
    reader,
    replay: eventReplay({ bus: runtime.bus(), streams: runtime.streams, pool: runtime.pool('api') }),
    limits: {
      conflateBytes: config.REALTIME_CONFLATE_BYTES,
      maxBufferBytes: config.REALTIME_MAX_BUFFER_BYTES,
      maxQueuedEvents: MAX_QUEUED_EVENTS,
    },
    metrics: liveMetrics(),
    log,
  });
  try {
    await reader.start(hub);
  } catch (err) {
    hub.close();
    await reader.close();
    failureStore?.disconnect();
    throw err;
  }
  registerLiveRoute(server.app, {
    hub,
    upgradeLater: (res, upgrade) => server.upgradeLater(res, upgrade),
    authorize,
    idleTimeoutS: config.REALTIME_IDLE_TIMEOUT_S,
    maxBufferBytes: config.REALTIME_MAX_BUFFER_BYTES,
    log,
  });
  server.serveMetrics();

  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
  let closing: Promise<void> | null = null;
  return {
    name: 'realtime',
    endpoints: {
      // The port is known once start.ts has listened (REALTIME_PORT may be 0).
      get live() {
        return `ws://${host}:${server.port || config.REALTIME_PORT}/v1/live`;
      },
    },
    close: () =>
      (closing ??= (async () => {
        hub.close();
        await reader.close();
        await failureStore?.quit().catch(() => failureStore.disconnect());
      })()),
  };
};
