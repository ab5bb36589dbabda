/**
 * A bare webhook receiver in a process of its own: answers every POST 200 at once, and for a body that
 * carries `occurred_at` (the envelope) records how long after that instant it arrived. The parent asks
 * for `{cmd:'stats'}` and gets the count and the latency histogram; `{cmd:'reset'}` clears them, and with `since`
 * (Unix ms) leaves out from then on the envelopes that occurred before it (bench/e2e.ts: the warm-up's events).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Histogram } from './histogram.js';

let received = 0;
let firstAt = 0;
let lastAt = 0;
let latency = new Histogram();
let since = 0;
/** Deliveries left out by `since`: still progress, for a caller waiting for the later ones. */
let ignored = 0;

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const now = Date.now();
    const body = Buffer.concat(chunks).toString('utf8');
    const at = /"occurred_at":"([^"]+)"/.exec(body)?.[1];
    res.writeHead(200, { 'content-length': '0' }).end();
    if (since && (!at || Date.parse(at) < since)) {
      ignored++;
      return;
    }
    received++;
    if (!firstAt) firstAt = now;
    lastAt = now;
    if (at) latency.record(Math.max(0, now - Date.parse(at)) * 1000);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ cmd: 'ready', port: (server.address() as AddressInfo).port });
});
process.on('message', (msg: { cmd: string; since?: number }) => {
  if (msg.cmd === 'stats') process.send?.({ cmd: 'stats', received, ignored, firstAt, lastAt, latency: [...latency.counts] });
  if (msg.cmd === 'reset') {
    received = 0;
    firstAt = 0;
    lastAt = 0;
    latency = new Histogram();
    since = msg.since ?? 0;
    ignored = 0;
  }
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
