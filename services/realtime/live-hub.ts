import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import type { StreamEntry } from '../shared/bus.js';
import type { Logger } from '../shared/log.js';
import type { PositionRecord } from '../shared/contracts/stream-codec.js';
import type { EventReplay } from './event-replay.js';
import { messageOfEntry } from './event-replay.js';
import { BadRequest, CloseCode, CloseReason, errorMessage, parseClientRequest, type ClientRequest } from './live-protocol.js';
import type { LiveSocket, PositionFilter } from './live-socket.js';
import type { CredentialSockets } from './credential-sockets.js';
import type { LiveMetrics } from './metrics.js';
import type { LiveSink, LiveStreamReader } from './stream-reader.js';
import { TenantFanout, type FanoutLimits } from './tenant-fanout.js';

export interface LiveHubOptions {
  app: TemplatedApp;
  reader: LiveStreamReader;
  replay: EventReplay;
  limits: FanoutLimits;
  metrics: LiveMetrics;
  log: Logger;
  /** How often buffers are checked for conflation and the hard bound. */
  sweepMs?: number;
  /** Sockets opened with an API key, re-checked while open. */
  credentialSockets?: CredentialSockets;
}

const textDecoder = new TextDecoder();
/** `ws.send` result when uWebSockets.js skipped the message because the socket's buffer is full. */
const SEND_DROPPED = 2;

/**
 * The sockets of one realtime process, by tenant. A tenant's fan-out exists while it has sockets (or
 * upgrades in flight); the reader follows its events stream for exactly that long.
 */
export class LiveHub implements LiveSink {
  private readonly tenants = new Map<string, { fanout: TenantFanout; holds: number }>();
  private readonly sweepTimer: NodeJS.Timeout;
  private socketCount = 0;
  /** Sockets subscribed to positions: the reader reads the position shards only while there are any. */
  private positionSockets = 0;
  private closing = false;

  constructor(private readonly options: LiveHubOptions) {
    this.sweepTimer = setInterval(() => this.sweep(), options.sweepMs ?? 25);
    this.sweepTimer.unref();
  }

  get accepting(): boolean {
    return !this.closing;
  }

  /** Reserves the tenant's fan-out for a socket about to open; resolves once its events are followed. */
  async hold(tenantId: string): Promise<void> {
    let tenant = this.tenants.get(tenantId);
    if (!tenant) {
      const fanout = new TenantFanout(this.options.app, tenantId, this.options.limits, this.options.metrics, (s) => this.closeSlow(s));
      tenant = { fanout, holds: 0 };
      this.tenants.set(tenantId, tenant);
    }
    tenant.holds++;
    try {
      await this.options.reader.follow(tenantId);
    } catch (err) {
      this.release(tenantId);
      throw err;
    }
  }

  release(tenantId: string): void {
    const tenant = this.tenants.get(tenantId);
    if (!tenant || --tenant.holds > 0) return;
    this.tenants.delete(tenantId);
    this.options.reader.unfollow(tenantId);
  }

  opened(ws: WebSocket<LiveSocket>): void {
    const socket = ws.getUserData();
    socket.ws = ws;
    this.fanoutOf(socket).add(socket);
    this.socketCount++;
    this.options.metrics.sockets.inc();
    if (socket.credential) this.options.credentialSockets?.add(socket, socket.credential);
    if (socket.expiresAtMs !== null) {
      const remainingMs = Math.max(0, socket.expiresAtMs - Date.now());
      socket.expiryTimer = setTimeout(() => socket.ws?.end(CloseCode.tokenExpired, CloseReason.tokenExpired), remainingMs);
      socket.expiryTimer.unref();
    }
  }

  disconnected(ws: WebSocket<LiveSocket>): void {
    const socket = ws.getUserData();
    socket.closed = true;
    socket.ws = null;
    if (socket.expiryTimer) clearTimeout(socket.expiryTimer);
    if (socket.credential) this.options.credentialSockets?.remove(socket, socket.credential);
    if (socket.positions) this.countPositionSocket(-1);
    this.fanoutOf(socket).remove(socket);
    this.socketCount--;
    this.options.metrics.sockets.dec();
    this.release(socket.tenantId);
  }

  drained(ws: WebSocket<LiveSocket>): void {
    const socket = ws.getUserData();
    if (!socket.closed) this.fanoutOf(socket).drained(socket);
  }

  received(ws: WebSocket<LiveSocket>, data: ArrayBuffer): void {
    const socket = ws.getUserData();
    let request: ClientRequest;
    try {
      request = parseClientRequest(textDecoder.decode(data));
    } catch (err) {
      if (!(err instanceof BadRequest)) throw err;
      ws.send(errorMessage('bad_request', err.message));
      return;
    }
    try {
      this.apply(socket, request);
    } catch (err) {
      this.options.log.error({ err, tenantId: socket.tenantId }, 'live request failed');
      ws.send(errorMessage('internal', 'the request could not be applied'));
    }
  }

  private apply(socket: LiveSocket, request: ClientRequest): void {
    const fanout = this.fanoutOf(socket);
    if (request.type === 'subscribe') {
      if (request.channels.has('positions')) this.setPositionFilter(socket, fanout, { assets: request.assets, bbox: request.bbox });
      if (request.channels.has('events')) {
        if (request.since) void this.replay(socket, fanout, request.since);
        else if (socket.events !== 'live') fanout.subscribeEvents(socket);
      }
      return;
    }
    if (request.channels.has('positions') && socket.positions) {
      const current = socket.positions.assets;
      if (request.assets && current) {
        const remaining = new Set([...current].filter((id) => !request.assets!.has(id)));
        this.setPositionFilter(socket, fanout, remaining.size > 0 ? { ...socket.positions, assets: remaining } : null);
      } else {
        this.setPositionFilter(socket, fanout, null);
      }
    }
    if (request.channels.has('events')) fanout.unsubscribeEvents(socket);
  }

  /**
   * Sends the events after `since` (stream, or table where trimmed), then the live ones queued meanwhile
   * that come after the last one replayed, then subscribes: in order, no gap, no duplicate at the seam.
   */
  private async replay(socket: LiveSocket, fanout: TenantFanout, since: string): Promise<void> {
    const generation = fanout.beginReplay(socket);
    const current = () => !socket.closed && socket.eventsGeneration === generation;
    let lastSentId = since;
    try {
      for await (const page of this.options.replay(socket.tenantId, since)) {
        if (!current()) return;
        const ws = socket.ws!;
        let dropped = false;
        ws.cork(() => {
          for (const event of page) {
            if (ws.send(event.message) === SEND_DROPPED) {
              dropped = true;
              break;
            }
            lastSentId = event.id;
          }
        });
        this.options.metrics.deliveries.inc({ kind: 'event' }, page.length);
        if (dropped || ws.getBufferedAmount() > this.options.limits.maxBufferBytes) return this.closeSlow(socket);
      }
      if (current()) fanout.finishReplay(socket, lastSentId, this.options.reader.cursorOf(socket.tenantId));
    } catch (err) {
      if (!current()) return;
      this.options.log.error({ err, tenantId: socket.tenantId }, 'event replay failed');
      const ws = socket.ws!;
      ws.send(errorMessage('internal', 'event replay failed; reconnect with since'));
      ws.end(CloseCode.internal, CloseReason.replayFailed);
    }
  }

  private closeSlow(socket: LiveSocket): void {
    if (socket.closed || !socket.ws) return;
    this.options.metrics.closedSlow.inc();
    this.options.log.info({ tenantId: socket.tenantId, userId: socket.userId, buffered: socket.ws.getBufferedAmount() }, 'slow live socket closed');
    socket.ws.end(CloseCode.slowConsumer, CloseReason.slowConsumer);
  }

  private fanoutOf(socket: LiveSocket): TenantFanout {
    return this.tenants.get(socket.tenantId)!.fanout;
  }

  private setPositionFilter(socket: LiveSocket, fanout: TenantFanout, filter: PositionFilter | null): void {
    const had = socket.positions !== null;
    fanout.setPositionFilter(socket, filter);
    if (had !== (filter !== null)) this.countPositionSocket(filter ? 1 : -1);
  }

  private countPositionSocket(delta: 1 | -1): void {
    this.positionSockets += delta;
    if (this.positionSockets === (delta > 0 ? 1 : 0)) {
      this.options.reader.wantPositions(delta > 0);
    }
  }

  // LiveSink

  dispatchPositions(records: PositionRecord[]): void {
    const touched = new Set<TenantFanout>();
    for (const record of records) {
      const fanout = this.tenants.get(record.tenant_id)?.fanout;
      if (!fanout) continue;
      fanout.publishPosition(record);
      touched.add(fanout);
    }
    for (const fanout of touched) fanout.flushOutboxes();
  }

  dispatchEvents(tenantId: string, entries: StreamEntry[]): void {
    const fanout = this.tenants.get(tenantId)?.fanout;
    if (!fanout) return;
    for (const entry of entries) {
      const message = messageOfEntry(tenantId, entry);
      if (message) fanout.publishEvent(entry.id, message);
      else this.options.log.warn({ tenantId, id: entry.id }, 'event stream entry is not an envelope of its tenant; skipped');
    }
    fanout.settleReplays(entries[entries.length - 1]!.id);
  }

  private sweep(): void {
    for (const { fanout } of this.tenants.values()) {
      if (fanout.dirty || fanout.hasConflated) fanout.sweep();
    }
  }

  /** Stops taking sockets and closes the open ones with "going away": clients resume with `since` elsewhere. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.sweepTimer);
    this.options.credentialSockets?.close();
    for (const { fanout } of [...this.tenants.values()]) {
      for (const socket of [...fanout.sockets]) socket.ws?.end(CloseCode.goingAway, CloseReason.goingAway);
    }
  }
}
