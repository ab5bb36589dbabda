/**
 * A dispatcher for bench/e2e.ts, in a child process: one live socket subscribed to the tenant's events. For each
 * event it times two hops from the envelope itself — the events stream to this socket (receive time minus the
 * stream id's milliseconds: `id` is the Redis stream id) and the whole path (receive time minus `data.ts`, the
 * fix that confirmed the transition, stamped when the generator sent it). Only events whose fix was sent after
 * `since` count (the warm-up's are dropped).
 *
 * Parent → child: {cmd:'connect', url, since}, {cmd:'since', since}, {cmd:'collect'}, {cmd:'window'}.
 * Child → parent: {ready}, {connected}, {collected: LiveHops}, {window: {events, endToEnd}}, {failed}, {closed}.
 */
import WebSocket from 'ws';
import { Histogram } from './histogram.js';

export interface LiveHops {
  events: number;
  /** Events before `since`, or without a stream id or fix time. */
  ignored: number;
  streamToSocket: number[];
  endToEnd: number[];
}

const streamToSocket = new Histogram();
const endToEnd = new Histogram();
/** End to end since the last `window` request (the soak's intervals). */
let windowEndToEnd = new Histogram();
let windowEvents = 0;
let events = 0;
let ignored = 0;
let since = 0;

function onEvent(text: string): void {
  const receivedMs = Date.now();
  const message = JSON.parse(text) as { type?: string; id?: string; data?: { ts?: string } };
  if (message.type !== 'event') return;
  const streamMs = Number(message.id?.split('-')[0]);
  const fixMs = Date.parse(message.data?.ts ?? '');
  if (!Number.isFinite(streamMs) || !Number.isFinite(fixMs) || fixMs < since) {
    ignored++;
    return;
  }
  events++;
  windowEvents++;
  streamToSocket.record((receivedMs - streamMs) * 1000);
  endToEnd.record((receivedMs - fixMs) * 1000);
  windowEndToEnd.record((receivedMs - fixMs) * 1000);
}

type Command = { cmd: 'connect'; url: string; since: number } | { cmd: 'since'; since: number } | { cmd: 'collect' } | { cmd: 'window' };

process.on('message', (message: Command) => {
  if (message.cmd === 'connect') {
    since = message.since;
    const socket = new WebSocket(message.url);
    socket.on('open', () => {
      socket.send(JSON.stringify({ type: 'subscribe', channels: ['events'] }));
      process.send!({ connected: true });
    });
    socket.on('message', (data) => onEvent(data.toString()));
    socket.on('error', (err) => process.send!({ failed: err.message }));
    socket.on('close', (code) => process.send!({ closed: code }));
  } else if (message.cmd === 'since') {
    since = message.since;
  } else if (message.cmd === 'window') {
    process.send!({ window: { events: windowEvents, endToEnd: windowEndToEnd.toJSON() } });
    windowEvents = 0;
    windowEndToEnd = new Histogram();
  } else {
    process.send!({ collected: { events, ignored, streamToSocket: streamToSocket.toJSON(), endToEnd: endToEnd.toJSON() } satisfies LiveHops });
  }
});
process.send!({ ready: true });
