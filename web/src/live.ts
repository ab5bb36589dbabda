/** The live socket (docs/design.md, "Live contract"): subscribes, follows events by id, and reconnects with `since`. */

export interface LivePosition {
  type: 'position';
  asset_id: string | null;
  device_id: string;
  ts: string;
  lat: number;
  lon: number;
  speed_mps: number | null;
  heading_deg: number | null;
}

export interface LiveEvent {
  type: 'event';
  id: string;
  event: string;
  tenant_id: string;
  occurred_at: string;
  data: Record<string, unknown>;
}

export type LiveState =
  | { state: 'connecting' }
  | { state: 'live' }
  | { state: 'disconnected'; retryInMs: number; reason: string };

export interface LiveHandlers {
  position(position: LivePosition): void;
  event(event: LiveEvent): void;
  state(state: LiveState): void;
  /** Back after a disconnection: positions sent meanwhile are not replayed, so the caller may refresh. */
  resumed(): void;
  /** The token no longer opens the socket (expired, revoked). */
  unauthorized(): void;
}

/** On the first connection, the events of the last minutes are replayed so the panel is not empty. */
const RECENT_EVENTS_MS = 15 * 60_000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15_000;
const TOKEN_EXPIRED = 4001;

export class LiveConnection {
  private socket: WebSocket | null = null;
  private lastEventId: string | null = null;
  private attempt = 0;
  private retryTimer: number | undefined;
  private everOpened = false;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly handlers: LiveHandlers,
    /** Asks the API whether the token is still good, after a connection attempt that never opened. */
    private readonly tokenStillValid: () => Promise<boolean>,
  ) {}

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.retryTimer);
    this.socket?.close(1000);
    this.socket = null;
  }

  reconnectNow(): void {
    if (this.stopped || this.socket) return;
    window.clearTimeout(this.retryTimer);
    this.connect();
  }

  private connect(): void {
    this.handlers.state({ state: 'connecting' });
    const socket = new WebSocket(`${this.url}?token=${encodeURIComponent(this.token)}`);
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.attempt = 0;
      const since = this.lastEventId ?? `${Date.now() - RECENT_EVENTS_MS}-0`;
      socket.send(JSON.stringify({ type: 'subscribe', channels: ['positions', 'events'], since }));
      this.handlers.state({ state: 'live' });
      if (this.everOpened) this.handlers.resumed();
      this.everOpened = true;
    };
    socket.onmessage = (message) => this.receive(String(message.data));
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (close.code === TOKEN_EXPIRED) return this.handlers.unauthorized();
      void this.scheduleRetry(opened, close.reason || (opened ? `connection closed (${close.code})` : 'cannot reach the live server'));
    };
  }

  private async scheduleRetry(opened: boolean, reason: string): Promise<void> {
    if (!opened && !(await this.tokenStillValid().catch(() => true))) return this.handlers.unauthorized();
    if (this.stopped) return;
    const backoffMs = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.attempt++);
    const retryInMs = Math.round(backoffMs * (0.75 + Math.random() * 0.5));
    this.handlers.state({ state: 'disconnected', retryInMs, reason });
    this.retryTimer = window.setTimeout(() => this.connect(), retryInMs);
  }

  private receive(text: string): void {
    let message: { type?: string };
    try {
      message = JSON.parse(text) as { type?: string };
    } catch {
      return;
    }
    if (message.type === 'position') this.handlers.position(message as LivePosition);
    else if (message.type === 'event') {
      const event = message as LiveEvent;
      this.lastEventId = event.id;
      this.handlers.event(event);
    } else if (message.type === 'error') console.warn('live server:', message);
  }
}
