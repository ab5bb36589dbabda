import uWS from 'uWebSockets.js';
import promClient from 'prom-client';
import { unauthorized } from './contracts/errors.js';
import { metricsAccess } from './metrics-access.js';
import { sendError } from './uws-http.js';
import { CorkAnchor } from './uws-cork-anchor.js';

/**
 * The realtime port (docs/design.md, "Roles and processes"): one uWebSockets.js app that the ingest role (`/v1/ingest`,
 * `POST /v1/ingest/gps`) and the realtime role (`/v1/live`) both register on, then one listen.
 */
export class UwsServer {
  readonly app: uWS.TemplatedApp = uWS.App();
  private listenSocket: uWS.us_listen_socket | null = null;
  private readonly anchor = new CorkAnchor();
  private metricsServed = false;
  private readonly metricsAllowed: (authorization: string | undefined) => boolean;
  port = 0;

  /** `metricsToken`: METRICS_TOKEN, which closes `/metrics` to callers without it (services/shared/metrics-access.ts). */
  constructor(options: { metricsToken?: string } = {}) {
    this.metricsAllowed = metricsAccess(options.metricsToken);
  }

  /**
   * `GET /metrics` (the process's default prom-client registry), so that an ingest-only or realtime-only
   * process can be scraped. Idempotent: uWebSockets.js aborts the process when a route is registered twice.
   */
  serveMetrics(): void {
    if (this.metricsServed) return;
    this.metricsServed = true;
    this.app.get('/metrics', (res, req) => {
      if (!this.metricsAllowed(req.getHeader('authorization'))) return sendError(res, unauthorized('/metrics needs the metrics token (Authorization: Bearer …)'));
      let aborted = false;
      res.onAborted(() => { aborted = true; });
      void promClient.register.metrics().then((text) => {
        if (!aborted) res.cork(() => res.writeHeader('content-type', promClient.register.contentType).end(text));
      });
    });
  }

  async listen(host: string, port: number): Promise<number> {
    const [listening] = await Promise.all([
      new Promise<number>((resolve, reject) => {
        this.app.listen(host, port, (socket) => {
          if (!socket) return reject(new Error(`realtime port ${host}:${port} could not be opened (in use?)`));
          this.listenSocket = socket;
          this.port = uWS.us_socket_local_port(socket);
          resolve(this.port);
        });
      }),
      this.anchor.open(),
    ]);
    return listening;
  }

  /**
   * Completes an upgrade after the handler has returned (authentication is asynchronous): `upgrade` calls
   * `res.upgrade`. Not `res.cork` alone, which may drop the new socket (services/shared/uws-cork-anchor.ts).
   */
  upgradeLater(res: uWS.HttpResponse, upgrade: () => void): void {
    this.anchor.upgrade(res, upgrade);
  }

  /**
   * Stops accepting connections. This uWebSockets.js build has no `app.close()`: open sockets are the
   * roles' to close on shutdown.
   */
  close(): void {
    if (this.listenSocket) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
    this.anchor.close();
  }
}
