import type { TemplatedApp } from 'uWebSockets.js';
import type { PositionRecord } from '../shared/contracts/stream-codec.js';
import { assetKeyOf, insideBBox, positionMessage } from './live-protocol.js';
import type { LiveSocket, PositionFilter } from './live-socket.js';
import type { LiveMetrics } from './metrics.js';
import { compareStreamIds } from '../shared/stream-ids.js';

/** `ws.send` result when uWebSockets.js skipped the message because the socket's buffer is full. */
const SEND_DROPPED = 2;

interface OutgoingPosition {
  record: PositionRecord;
  message: string;
  bytes: Buffer;
}

/** What the fan-out needs of the uWebSockets.js app: its topics. */
export type TopicPublisher = Pick<TemplatedApp, 'numSubscribers' | 'publish'>;

export interface FanoutLimits {
  /** Buffered bytes past which a socket's positions are conflated. */
  conflateBytes: number;
  /** Buffered bytes past which a socket is closed as a slow consumer. */
  maxBufferBytes: number;
  /** Live events held for one socket while its replay reads, past which it is closed as slow. */
  maxQueuedEvents: number;
}

/**
 * One tenant's fan-out. Messages are serialized once and published to uWebSockets.js topics, so the
 * copy to each subscriber happens in C++: `t/{tenant}/p` (every position), `t/{tenant}/a/{asset}`
 * (asset-filtered subscriptions), `t/{tenant}/e` (events). Bounding-box subscribers are filtered here,
 * per socket: a box rarely matches a grid of topic cells exactly, and dispatch screens with a box are few.
 */
export class TenantFanout {
  readonly sockets = new Set<LiveSocket>();
  readonly positionsTopic: string;
  readonly eventsTopic: string;
  /** Published to since the last sweep: its sockets' buffers may have grown. */
  dirty = false;
  private readonly boxSubscribers = new Set<LiveSocket>();
  /** Sockets whose positions are held latest-per-asset (topic and box subscribers alike). */
  private readonly conflated = new Set<LiveSocket>();
  private readonly replaying = new Set<LiveSocket>();
  /** Box subscribers with positions waiting for `flushOutboxes`. */
  private readonly withOutbox = new Set<LiveSocket>();
  private assetSubscribers = 0;

  constructor(
    private readonly app: TopicPublisher,
    readonly tenantId: string,
    private readonly limits: FanoutLimits,
    private readonly metrics: LiveMetrics,
    private readonly closeSlow: (socket: LiveSocket) => void,
  ) {
    this.positionsTopic = `t/${tenantId}/p`;
    this.eventsTopic = `t/${tenantId}/e`;
  }

  private assetTopic(key: string): string {
    return `t/${this.tenantId}/a/${key}`;
  }

  /** Where a conflated socket goes back to live positions: half the bound, so it does not flap. */
  private get lowWaterBytes(): number {
    return this.limits.conflateBytes >> 1;
  }

  add(socket: LiveSocket): void {
    this.sockets.add(socket);
  }

  /** The socket is closed: uWebSockets.js has dropped its topics already. */
  remove(socket: LiveSocket): void {
    this.sockets.delete(socket);
    this.clearPositionRoute(socket);
    this.conflated.delete(socket);
    this.replaying.delete(socket);
    this.withOutbox.delete(socket);
  }

  // Positions

  setPositionFilter(socket: LiveSocket, filter: PositionFilter | null): void {
    const ws = socket.ws!;
    if (!socket.conflated) for (const topic of socket.positionTopics) ws.unsubscribe(topic);
    this.clearPositionRoute(socket);
    socket.positions = filter;
    if (socket.conflated) {
      for (const [key, held] of socket.conflated) if (!filter || !matches(filter, held.record)) socket.conflated.delete(key);
    }
    if (!filter) return;
    if (filter.bbox) {
      socket.perSocketFilter = true;
      this.boxSubscribers.add(socket);
      return;
    }
    if (filter.assets) {
      socket.positionTopics = [...filter.assets].map((key) => this.assetTopic(key));
      this.assetSubscribers++;
    } else {
      socket.positionTopics = [this.positionsTopic];
    }
    if (!socket.conflated) for (const topic of socket.positionTopics) ws.subscribe(topic);
  }

  private clearPositionRoute(socket: LiveSocket): void {
    if (socket.positions?.assets && !socket.positions.bbox) this.assetSubscribers--;
    socket.positionTopics = [];
    socket.perSocketFilter = false;
    this.boxSubscribers.delete(socket);
  }

  publishPosition(record: PositionRecord): void {
    let message: string | undefined;
    const everyAsset = this.app.numSubscribers(this.positionsTopic);
    if (everyAsset > 0) {
      message = positionMessage(record);
      this.app.publish(this.positionsTopic, message);
      this.metrics.deliveries.inc({ kind: 'position' }, everyAsset);
    }
    if (this.assetSubscribers > 0) {
      const topic = this.assetTopic(assetKeyOf(record));
      const forAsset = this.app.numSubscribers(topic);
      if (forAsset > 0) {
        message ??= positionMessage(record);
        this.app.publish(topic, message);
        this.metrics.deliveries.inc({ kind: 'position' }, forAsset);
      }
    }
    let outgoing: OutgoingPosition | undefined;
    for (const socket of this.boxSubscribers) {
      if (!matches(socket.positions!, record)) continue;
      message ??= positionMessage(record);
      if (socket.conflated) {
        this.hold(socket, record, message);
        continue;
      }
      // Encoded once: uWebSockets.js copies a buffer as is, where a string is converted on every send.
      outgoing ??= { record, message, bytes: Buffer.from(message) };
      (socket.outbox ??= []).push(outgoing);
      this.withOutbox.add(socket);
    }
    for (const socket of this.conflated) {
      if (socket.perSocketFilter || !socket.positions || !matches(socket.positions, record)) continue;
      this.hold(socket, record, message ??= positionMessage(record));
    }
    this.dirty = true;
  }

  /**
   * Sends what the last batch of positions left in the box subscribers' outboxes, corked: one write per
   * socket and batch, as the topics get (a send outside a uWebSockets.js callback is a write of its own).
   */
  flushOutboxes(): void {
    for (const socket of this.withOutbox) {
      const items = socket.outbox!;
      socket.outbox = null;
      const ws = socket.ws;
      if (!ws) continue;
      if (ws.getBufferedAmount() > this.limits.conflateBytes) {
        this.startConflating(socket);
        for (const { record, message } of items) this.hold(socket, record, message);
        continue;
      }
      let sent = 0;
      ws.cork(() => {
        for (const { bytes } of items) {
          if (ws.send(bytes) === SEND_DROPPED) break;
          sent++;
        }
      });
      this.metrics.deliveries.inc({ kind: 'position' }, sent);
      if (sent < items.length) this.closeSlow(socket);
    }
    this.withOutbox.clear();
  }

  private hold(socket: LiveSocket, record: PositionRecord, message: string): void {
    const key = assetKeyOf(record);
    if (socket.conflated!.has(key)) this.metrics.conflated.inc();
    socket.conflated!.set(key, { record, message });
  }

  /** Stops topic delivery to the socket; from now on only the latest position per asset is kept for it. */
  private startConflating(socket: LiveSocket): void {
    socket.conflated = new Map();
    this.conflated.add(socket);
    for (const topic of socket.positionTopics) socket.ws!.unsubscribe(topic);
  }

  /** Sends the held positions, then puts the socket back on its topics (in one tick: no gap). */
  private stopConflating(socket: LiveSocket): void {
    const ws = socket.ws!;
    const held = socket.conflated!;
    socket.conflated = null;
    this.conflated.delete(socket);
    ws.cork(() => {
      for (const { message } of held.values()) ws.send(message);
      for (const topic of socket.positionTopics) ws.subscribe(topic);
    });
    this.metrics.deliveries.inc({ kind: 'position' }, held.size);
  }

  // Events

  subscribeEvents(socket: LiveSocket): void {
    socket.eventsGeneration++;
    this.replaying.delete(socket);
    socket.replayQueue = null;
    socket.seamAfter = null;
    socket.events = 'live';
    socket.ws!.subscribe(this.eventsTopic);
  }

  unsubscribeEvents(socket: LiveSocket): void {
    socket.eventsGeneration++;
    this.replaying.delete(socket);
    socket.replayQueue = null;
    socket.seamAfter = null;
    socket.events = 'off';
    socket.ws!.unsubscribe(this.eventsTopic);
  }

  /** Live events are queued for the socket instead of published to it until `finishReplay`. */
  beginReplay(socket: LiveSocket): number {
    socket.eventsGeneration++;
    socket.events = 'replaying';
    socket.replayQueue = [];
    socket.seamAfter = null;
    socket.ws!.unsubscribe(this.eventsTopic);
    this.replaying.add(socket);
    return socket.eventsGeneration;
  }

  /**
   * The replay has sent everything up to `lastSentId`. The reader may not have dispatched that far yet
   * (it joins a tenant's stream at its newest id when the first socket comes): until it has, live events
   * keep queuing, or the socket would get from the topic what the replay already sent.
   */
  finishReplay(socket: LiveSocket, lastSentId: string, readerCursor: string | null): void {
    socket.seamAfter = lastSentId;
    if (readerCursor !== null && compareStreamIds(readerCursor, lastSentId) >= 0) this.joinLive(socket);
  }

  /** Called after the reader dispatched a batch of this tenant's events: replays it has caught up with go live. */
  settleReplays(readerCursor: string): void {
    for (const socket of this.replaying) {
      if (socket.seamAfter !== null && compareStreamIds(readerCursor, socket.seamAfter) >= 0) this.joinLive(socket);
    }
  }

  /** The seam: queued live events after the last replayed id, then the topic. Nothing missed, nothing twice. */
  private joinLive(socket: LiveSocket): void {
    const lastSentId = socket.seamAfter!;
    const ws = socket.ws!;
    const queued = socket.replayQueue ?? [];
    let sent = 0;
    let dropped = false;
    ws.cork(() => {
      for (const event of queued) {
        if (compareStreamIds(event.id, lastSentId) <= 0) continue;
        if (ws.send(event.message) === SEND_DROPPED) {
          dropped = true;
          return;
        }
        sent++;
      }
      this.subscribeEvents(socket);
    });
    this.metrics.deliveries.inc({ kind: 'event' }, sent);
    if (dropped) this.closeSlow(socket);
  }

  publishEvent(id: string, message: string): void {
    const subscribers = this.app.numSubscribers(this.eventsTopic);
    if (subscribers > 0) {
      this.app.publish(this.eventsTopic, message);
      this.metrics.deliveries.inc({ kind: 'event' }, subscribers);
    }
    for (const socket of this.replaying) {
      socket.replayQueue!.push({ id, message });
      if (socket.replayQueue!.length > this.limits.maxQueuedEvents) this.closeSlow(socket);
    }
    this.dirty = true;
  }

  // Backpressure

  /**
   * Checks every socket's buffer: past the hard bound it is closed (events are never skipped silently),
   * past the conflation bound its positions are held latest-per-asset until it drains.
   */
  sweep(): void {
    this.dirty = false;
    for (const socket of this.sockets) {
      const ws = socket.ws;
      if (!ws) continue;
      const buffered = ws.getBufferedAmount();
      if (buffered > this.limits.maxBufferBytes) this.closeSlow(socket);
      else if (socket.conflated) {
        if (buffered <= this.lowWaterBytes) this.stopConflating(socket);
      } else if (buffered > this.limits.conflateBytes && socket.positions) this.startConflating(socket);
    }
  }

  get hasConflated(): boolean {
    return this.conflated.size > 0;
  }

  drained(socket: LiveSocket): void {
    if (socket.conflated && socket.ws!.getBufferedAmount() <= this.lowWaterBytes) this.stopConflating(socket);
  }
}

function matches(filter: PositionFilter, record: PositionRecord): boolean {
  if (filter.assets && !filter.assets.has(assetKeyOf(record))) return false;
  return !filter.bbox || insideBBox(filter.bbox, record.lon, record.lat);
}
