/**
 * A dispatcher for bench/e2e.ts and bench/soak.ts, in a child process: one live socket subscribed to the tenant's
 * events. For each event it times two hops from the envelope itself — the events stream to this socket (receive
 * time minus the stream id's milliseconds: `id` is the Redis stream id) and the whole path (receive time minus
 * `data.ts`, the fix that confirmed the transition, stamped when the generator sent it).
 * `collect` reads the events whose fix was sent in [from, to) — the measured interval, wherever they arrived
 * afterwards; `window` the events received since the previous window whose fix was sent after `since` (the soak).
 *
 * Parent → child: {cmd:'connect', url}, {cmd:'since', since}, {cmd:'collect', from, to}, {cmd:'window'}.
 * Child → parent: {ready}, {connected}, {collected: LiveHops}, {window: {events, endToEnd}}, {failed}, {closed}.
 */
import WebSocket from 'ws';
import { Histogram } from './histogram.js';

export interface LiveHops {
  events: number;
  /** Events of fixes outside the interval, or without a stream id or fix time. */
  ignored: number;
  streamToSocket: number[];
  endToEnd: number[];
}

/** Per event: the fix's time, the stream id's time, the receive time (ms); events are few, keeping them is cheap. */
const samples: [fixMs: number, streamMs: number, receivedMs: number][] = [];
let malformed = 0;
let since = Number.MAX_SAFE_INTEGER;
let windowEndToEnd = new Histogram();
let windowEvents = 0;

function onEvent(text: string): void {
  const receivedMs = Date.now();
  const message = JSON.parse(text) as { type?: string; id?: string; data?: { ts?: string } };
  if (message.type !== 'event') return;
  const streamMs = Number(message.id?.split('-')[0]);
  const fixMs = Date.parse(message.data?.ts ?? '');
  if (!Number.isFinite(streamMs) || !Number.isFinite(fixMs)) {
    malformed++;
    return;
  }
  samples.push([fixMs, streamMs, receivedMs]);
  if (fixMs >= since) {
    windowEvents++;
    windowEndToEnd.record((receivedMs - fixMs) * 1000);
  }
}

function collect(from: number, to: number): LiveHops {
  const streamToSocket = new Histogram();
  const endToEnd = new Histogram();
  let events = 0;
  for (const [fixMs, streamMs, receivedMs] of samples) {
    if (fixMs < from || fixMs >= to) continue;
    events++;
    streamToSocket.record((receivedMs - streamMs) * 1000);
    endToEnd.record((receivedMs - fixMs) * 1000);
  }
  return { events, ignored: samples.length - events + malformed, streamToSocket: streamToSocket.toJSON(), endToEnd: endToEnd.toJSON() };
}

type Command = { cmd: 'connect'; url: string } | { cmd: 'since'; since: number } | { cmd: 'collect'; from: number; to: number } | { cmd: 'window' };

process.on('message', (message: Command) => {
  if (message.cmd === 'connect') {
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
    process.send!({ collected: collect(message.from, message.to) });
  }
});
process.send!({ ready: true });
