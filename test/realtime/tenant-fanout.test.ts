import { Counter, Gauge } from 'prom-client';
import type { WebSocket } from 'uWebSockets.js';
import { beforeEach, describe, expect, it } from 'vitest';
import { newLiveSocket, type LiveSocket } from '../../services/realtime/live-socket.js';
import type { LiveMetrics } from '../../services/realtime/metrics.js';
import { TenantFanout, type FanoutLimits, type TopicPublisher } from '../../services/realtime/tenant-fanout.js';
import type { PositionRecord } from '../../services/shared/contracts/stream-codec.js';
import { position, uuidFor } from './fixtures.js';

/**
 * One tenant's fan-out without a network: its topics and sockets are a small in-memory stand-in for the
 * uWebSockets.js calls it makes (subscribe, publish, send, buffered amount), and each socket's buffer is set
 * by the test, as a dispatcher that stops reading would leave it. The live tests cover the same paths over
 * real sockets; here the conflation and the replay seam are checked message by message.
 */

class Topics implements TopicPublisher {
  readonly subscribers = new Map<string, Set<FakeSocket>>();

  numSubscribers(topic: string): number {
    return this.subscribers.get(topic)?.size ?? 0;
  }

  publish(topic: string, message: string | ArrayBuffer | Uint8Array): boolean {
    for (const ws of this.subscribers.get(topic) ?? []) ws.send(message);
    return true;
  }
}

/** What the client would have received, in order; `buffered` is what it has not read yet. */
class FakeSocket {
  readonly received: { type: string; id?: string; asset_id?: string; lat?: number }[] = [];
  buffered = 0;

  constructor(private readonly topics: Topics) {}

  subscribe(topic: string): boolean {
    let set = this.topics.subscribers.get(topic);
    if (!set) this.topics.subscribers.set(topic, (set = new Set()));
    set.add(this);
    return true;
  }

  unsubscribe(topic: string): boolean {
    return this.topics.subscribers.get(topic)?.delete(this) ?? false;
  }

  send(message: string | ArrayBuffer | Uint8Array): number {
    this.received.push(JSON.parse(typeof message === 'string' ? message : Buffer.from(message as Uint8Array).toString('utf8')));
    return 1;
  }

  cork(work: () => void): this {
    work();
    return this;
  }

  getBufferedAmount(): number {
    return this.buffered;
  }
}

const LIMITS: FanoutLimits = { conflateBytes: 1000, maxBufferBytes: 10_000, maxQueuedEvents: 5 };

let topics: Topics;
let closedSlow: LiveSocket[];
let sut: TenantFanout;
const tenantId = uuidFor('tenant');

function metrics(): LiveMetrics {
  return {
    sockets: new Gauge({ name: 'test_sockets', help: 'test', registers: [] }),
    deliveries: new Counter({ name: 'test_deliveries', help: 'test', labelNames: ['kind'], registers: [] }),
    conflated: new Counter({ name: 'test_conflated', help: 'test', registers: [] }),
    closedSlow: new Counter({ name: 'test_closed', help: 'test', registers: [] }),
  };
}

function connect(): { socket: LiveSocket; ws: FakeSocket } {
  const ws = new FakeSocket(topics);
  const socket = newLiveSocket(tenantId, uuidFor('user'), null);
  socket.ws = ws as unknown as WebSocket<LiveSocket>;
  sut.add(socket);
  return { socket, ws };
}

const fix = (asset: string, lat: number): PositionRecord => position(tenantId, uuidFor(`device-of-${asset}`), uuidFor(asset), lat, 7);
const event = (id: string) => ({ id, message: JSON.stringify({ type: 'event', id }) });
const positionsOf = (ws: FakeSocket) => ws.received.filter((m) => m.type === 'position').map((m) => [m.asset_id, m.lat]);
const eventIdsOf = (ws: FakeSocket) => ws.received.filter((m) => m.type === 'event').map((m) => m.id);

beforeEach(() => {
  topics = new Topics();
  closedSlow = [];
  sut = new TenantFanout(topics, tenantId, LIMITS, metrics(), (socket) => closedSlow.push(socket));
});

describe('conflation', () => {
  it('holds the latest position per asset while a socket is over the bound, then sends those and goes live again', () => {
    const { socket, ws } = connect();
    sut.setPositionFilter(socket, { assets: null, bbox: null });
    sut.publishPosition(fix('a', 1));

    ws.buffered = LIMITS.conflateBytes + 1; // the client stopped reading
    sut.sweep();
    for (const [asset, lat] of [['a', 2], ['b', 1], ['a', 3], ['b', 2], ['a', 4]] as const) sut.publishPosition(fix(asset, lat));
    expect(positionsOf(ws)).toEqual([[uuidFor('a'), 1]]);

    ws.buffered = LIMITS.conflateBytes / 2 + 1; // above the low water mark: still conflated
    sut.drained(socket);
    expect(positionsOf(ws)).toHaveLength(1);

    ws.buffered = LIMITS.conflateBytes / 2;
    sut.drained(socket);
    sut.publishPosition(fix('b', 3));
    expect(positionsOf(ws)).toEqual([[uuidFor('a'), 1], [uuidFor('a'), 4], [uuidFor('b'), 2], [uuidFor('b'), 3]]);
  });

  it('conflates box subscribers too, and keeps only positions inside the box', () => {
    const { socket, ws } = connect();
    sut.setPositionFilter(socket, { assets: null, bbox: [6, 0, 8, 50] });
    ws.buffered = LIMITS.conflateBytes + 1;
    sut.publishPosition(fix('a', 1));
    sut.flushOutboxes(); // over the bound at the flush: held instead of sent
    sut.publishPosition(fix('a', 2));
    sut.publishPosition(position(tenantId, uuidFor('device-of-c'), uuidFor('c'), 60, 7)); // outside the box
    sut.flushOutboxes();
    expect(positionsOf(ws)).toEqual([]);

    ws.buffered = 0;
    sut.drained(socket);
    expect(positionsOf(ws)).toEqual([[uuidFor('a'), 2]]);
  });

  it('never skips events: a conflated socket still gets them, and past the hard bound it is closed', () => {
    const { socket, ws } = connect();
    sut.setPositionFilter(socket, { assets: null, bbox: null });
    sut.subscribeEvents(socket);
    ws.buffered = LIMITS.conflateBytes + 1;
    sut.sweep();
    sut.publishPosition(fix('a', 1));
    sut.publishEvent('1-0', event('1-0').message);
    expect(eventIdsOf(ws)).toEqual(['1-0']);
    expect(positionsOf(ws)).toEqual([]);
    expect(closedSlow).toEqual([]);

    ws.buffered = LIMITS.maxBufferBytes + 1;
    sut.sweep();
    expect(closedSlow).toEqual([socket]);
  });
});

describe('replay seam', () => {
  it('waits for the reader to pass the last replayed event, then sends only what comes after it', () => {
    const { socket, ws } = connect();
    sut.beginReplay(socket);
    for (const id of ['1-0', '2-0', '3-0']) ws.send(event(id).message); // the replay's pages, as the hub sends them
    sut.finishReplay(socket, '3-0', '1-0'); // the reader has dispatched up to 1-0 only
    for (const id of ['2-0', '3-0', '4-0']) sut.publishEvent(id, event(id).message);
    expect(eventIdsOf(ws)).toEqual(['1-0', '2-0', '3-0']);

    sut.settleReplays('4-0');
    sut.publishEvent('5-0', event('5-0').message);
    expect(eventIdsOf(ws)).toEqual(['1-0', '2-0', '3-0', '4-0', '5-0']);
    expect(socket.events).toBe('live');
  });

  it('joins at once when the reader is already past the replay, sending the live events queued meanwhile', () => {
    const { socket, ws } = connect();
    sut.beginReplay(socket);
    ws.send(event('1-0').message);
    for (const id of ['1-0', '2-0']) sut.publishEvent(id, event(id).message); // arrived while the replay read
    sut.finishReplay(socket, '1-0', '2-0');
    sut.publishEvent('3-0', event('3-0').message);
    expect(eventIdsOf(ws)).toEqual(['1-0', '2-0', '3-0']);
  });

  it('closes a socket whose queue of live events outgrows the bound during a replay', () => {
    const { socket } = connect();
    sut.beginReplay(socket);
    for (let i = 1; i <= LIMITS.maxQueuedEvents + 1; i++) sut.publishEvent(`${i}-0`, event(`${i}-0`).message);
    expect(closedSlow).toEqual([socket]);
  });
});
