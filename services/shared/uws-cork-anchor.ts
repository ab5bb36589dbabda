import { randomBytes } from 'node:crypto';
import net from 'node:net';
import uWS from 'uWebSockets.js';

/** How long `open` waits for the anchor's own handshake before going on without it. */
const OPEN_TIMEOUT_MS = 2_000;

/**
 * Completes WebSocket upgrades that finish asynchronously (after authentication) without a bug of the
 * uWebSockets.js build we can install (v20.30; fixed upstream in uWebSockets PR 1929, July 2026):
 * `res.cork(() => res.upgrade(…))` outside a request handler may close the new socket right after its `open`
 * event, without a close frame (the client sees 1006). `cork` reads the HTTP response's state after the
 * upgrade has reallocated the socket in place, and acts on whatever the WebSocket left in those bytes.
 *
 * That code runs only when `cork` itself corks the socket. While another socket of the event loop is corked,
 * `res.cork` calls its function and nothing else, as in a synchronous upgrade. The anchor is that other
 * socket: a WebSocket this process opens to a loopback listener of its own, idle and never written to,
 * corked around each upgrade. Without it (it could not be opened, or it was closed), upgrades take the plain
 * `res.cork` path. docs/design.md, "Live fan-out", tells the story.
 */
export class CorkAnchor {
  private anchor: uWS.WebSocket<unknown> | null = null;
  private listenSocket: uWS.us_listen_socket | null = null;
  private client: net.Socket | null = null;
  private closed = false;
  private opening: Promise<void> | null = null;

  /** Opens the anchor on 127.0.0.1 (an ephemeral port, closed again once the one connection is in); without it, upgrades take the plain path. */
  open(): Promise<void> {
    return (this.opening ??= this.connect().catch(() => this.close()));
  }

  /** Runs `upgrade` (which calls `res.upgrade`) corked, with the anchor corked around it. */
  upgrade(res: uWS.HttpResponse, upgrade: () => void): void {
    if (this.anchor) this.anchor.cork(() => res.cork(upgrade));
    else res.cork(upgrade);
  }

  /** Idempotent; the anchor's sockets would keep the process alive otherwise. */
  close(): void {
    this.closed = true;
    this.closeListener();
    const anchor = this.anchor;
    this.anchor = null;
    anchor?.close();
    this.client?.destroy();
    this.client = null;
  }

  private connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('cork anchor: no handshake')), OPEN_TIMEOUT_MS);
      const app = uWS.App();
      app.ws('/anchor', {
        idleTimeout: 0, // never times out: it carries nothing
        sendPingsAutomatically: false,
        maxPayloadLength: 16,
        open: (ws) => {
          this.closeListener(); // one connection is all it takes
          if (this.closed || this.anchor) return ws.close();
          this.anchor = ws;
          clearTimeout(timer);
          resolve();
        },
        message: (ws) => ws.close(),
        close: (ws) => {
          if (this.anchor === ws) this.anchor = null;
        },
      });
      app.listen('127.0.0.1', 0, (listenSocket) => {
        if (!listenSocket) return reject(new Error('cork anchor: no loopback port'));
        this.listenSocket = listenSocket;
        const client = net.connect(uWS.us_socket_local_port(listenSocket), '127.0.0.1', () => {
          client.write(
            'GET /anchor HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
            + `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
          );
        });
        client.on('data', () => {}); // the 101 response, then nothing
        client.on('error', () => {});
        client.unref();
        this.client = client;
      });
    });
  }

  private closeListener(): void {
    if (this.listenSocket) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
  }
}
