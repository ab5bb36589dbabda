import WebSocket from 'ws';

/** How long `next` waits by default: far beyond any delivery on a loaded machine, well within a test's time. */
const NEXT_TIMEOUT_MS = 15_000;

export interface LiveMessage {
  type: string;
  [field: string]: unknown;
}

/**
 * A dispatcher's socket for tests: every message it receives is kept in order, and `next` waits
 * for the first unread one that matches.
 */
export class LiveClient {
  readonly received: LiveMessage[] = [];
  private readCursor = 0;
  private waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.received.push(JSON.parse(String(data)) as LiveMessage);
      this.wake();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => {
      resolve({ code, reason: String(reason) });
      this.wake();
    }));
  }

  static connect(url: string): Promise<LiveClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { handshakeTimeout: NEXT_TIMEOUT_MS });
      ws.once('open', () => resolve(new LiveClient(ws)));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  /** Resolves with the HTTP status that refused the upgrade, and the body's error code. */
  static refusal(url: string): Promise<{ status: number; code: string }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => reject(new Error('upgrade was accepted')));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body) as { error: { code: string } }).error.code }));
      });
      ws.once('error', () => {});
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /**
   * Sends a request and waits for a pong: the server handles a socket's frames in order, so by then
   * the request has taken effect (no message is sent back for subscribe).
   */
  async request(message: unknown): Promise<void> {
    this.send(message);
    await this.sync();
  }

  /** Resolves once the server has answered a ping sent after everything before it; rejects if the socket closes first. */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.ws.readyState !== WebSocket.OPEN) return reject(new Error(`socket not open (state ${this.ws.readyState}) for a sync`));
      const closed = (code: number) => reject(new Error(`socket closed (${code}) before the server answered`));
      this.ws.once('close', closed);
      this.ws.once('pong', () => {
        this.ws.off('close', closed);
        resolve();
      });
      this.ws.ping();
    });
  }

  /**
   * The next unread message that matches (others before it are skipped), waiting for it if needed: at
   * most `timeoutMs`, then it fails with what the socket did receive, rather than hanging the file.
   */
  async next(matches: (m: LiveMessage) => boolean = () => true, what = 'message', timeoutMs = NEXT_TIMEOUT_MS): Promise<LiveMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.readCursor < this.received.length) {
        const message = this.received[this.readCursor++]!;
        if (matches(message)) return message;
      }
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed while waiting for ${what}`);
      const leftMs = deadline - Date.now();
      if (leftMs <= 0) {
        const last = this.received.slice(-3).map((m) => JSON.stringify(m).slice(0, 200));
        throw new Error(`no ${what} within ${timeoutMs} ms (socket state ${this.ws.readyState}, ${this.received.length} received, the last: ${last.join(' | ') || 'none'})`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, leftMs);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  ofType(type: string): LiveMessage[] {
    return this.received.filter((m) => m.type === type);
  }

  /** Stops reading from the TCP socket, as a stalled client would. */
  pauseReading(): void {
    (this.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  resumeReading(): void {
    (this.ws as unknown as { _socket: { resume(): void } })._socket.resume();
  }

  close(): void {
    this.ws.close();
  }
}
