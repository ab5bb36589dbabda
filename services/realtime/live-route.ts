import uWS, { type HttpResponse, type TemplatedApp } from 'uWebSockets.js';
import type { Logger } from '../shared/log.js';
import type { LiveAccess } from './live-auth.js';
import type { LiveHub } from './live-hub.js';
import { newLiveSocket, type LiveSocket } from './live-socket.js';
import { ApiError, internalError, unavailable } from '../shared/contracts/errors.js';
import { bearerToken, sendError } from '../shared/uws-http.js';
import { isDatabaseUnavailable } from '../shared/db.js';

export interface LiveRouteOptions {
  hub: LiveHub;
  /** Completes the upgrade once authentication has answered (UwsServer.upgradeLater). */
  upgradeLater(res: HttpResponse, upgrade: () => void): void;
  authorize(bearer: string, source?: string): Promise<LiveAccess>;
  idleTimeoutS: number;
  maxBufferBytes: number;
  log: Logger;
}

/** Headroom above the hard bound, so that the 4008 close frame (and a burst between sweeps) still fits. */
const BACKPRESSURE_HEADROOM = 1024 * 1024;

/** `/v1/live` (docs/design.md, "Live contract"): authenticated at the upgrade, refused with an HTTP status before it. */
export function registerLiveRoute(app: TemplatedApp, options: LiveRouteOptions): void {
  const { hub, log } = options;
  app.ws<LiveSocket>('/v1/live', {
    compression: uWS.DISABLED,
    maxPayloadLength: 64 * 1024,
    idleTimeout: options.idleTimeoutS,
    sendPingsAutomatically: true,
    maxBackpressure: options.maxBufferBytes + BACKPRESSURE_HEADROOM,
    // Our sweep closes with 4008 first; should a burst still reach the limit, uWebSockets.js would skip
    // messages, so it must end the connection instead (the client then resumes with since).
    closeOnBackpressureLimit: 1,

    upgrade: (res, req, context) => {
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const bearer = bearerToken(req);
      const source = Buffer.from(res.getRemoteAddressAsText()).toString();
      let aborted = false;
      res.onAborted(() => (aborted = true));
      if (!hub.accepting) return refuse(res, unavailable('server shutting down'));

      void (async () => {
        let access: LiveAccess;
        try {
          access = await options.authorize(bearer, source);
        } catch (err) {
          // Too many failed look-ups from this address: 429 with Retry-After.
          if (err instanceof ApiError) {
            if (!aborted) refuse(res, err);
            return;
          }
          log.error({ err }, 'live upgrade: authentication failed');
          if (!aborted) refuse(res, isDatabaseUnavailable(err) ? unavailable('the database is unavailable; retry shortly') : internalError());
          return;
        }
        if (aborted) return;
        if (!access.ok) return refuse(res, access.error);
        const { tenantId, userId } = access.principal;
        try {
          await hub.hold(tenantId);
        } catch (err) {
          log.error({ err, tenantId }, 'live upgrade: could not follow the tenant events');
          if (!aborted) refuse(res, unavailable('events stream unavailable'));
          return;
        }
        if (aborted || !hub.accepting) {
          hub.release(tenantId);
          if (!aborted) refuse(res, unavailable('server shutting down'));
          return;
        }
        const socket = newLiveSocket(tenantId, userId, access.expiresAtMs, bearer);
        options.upgradeLater(res, () => res.upgrade(socket, key, protocol, extensions, context));
      })().catch((err: unknown) => log.error({ err }, 'live upgrade failed'));
    },

    open: (ws) => hub.opened(ws),
    message: (ws, message) => hub.received(ws, message),
    drain: (ws) => hub.drained(ws),
    close: (ws) => hub.disconnected(ws),
  });
}

function refuse(res: HttpResponse, err: ApiError): void {
  res.cork(() => sendError(res, err, { closeConnection: true }));
}
