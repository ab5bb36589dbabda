import uWS from 'uWebSockets.js';

/**
 * The realtime port (DESIGN section 4/5): one uWebSockets.js app that the ingest role (`/v1/ingest`,
 * `POST /v1/ingest/gps`) and the realtime role (`/v1/live`) both register on, then one listen.
 */
export class UwsServer {
  readonly app: uWS.TemplatedApp = uWS.App();
  private listenSocket: uWS.us_listen_socket | null = null;
  port = 0;

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`realtime port ${host}:${port} could not be opened (in use?)`));
        this.listenSocket = socket;
        this.port = uWS.us_socket_local_port(socket);
        resolve(this.port);
      });
    });
  }

  /** Stops accepting connections; open sockets are the roles' to close. */
  stopListening(): void {
    if (this.listenSocket) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
  }

  /** This uWebSockets.js build has no `app.close()`: roles close their own sockets on shutdown. */
  close(): void {
    this.stopListening();
  }
}
