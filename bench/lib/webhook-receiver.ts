/**
 * The bare HTTP receiver of bench/e2e.ts's webhook hop (and the baseline a webhooks bench compares against): answers
 * every POST with 204 at once and times each delivery from the fix that caused it (`data.ts` of the event).
 *
 * Child → parent: {port} once listening, {collected: {deliveries, ignored, histogram}} on {cmd:'collect'}.
 * Parent → child: {cmd:'since', since} (deliveries of earlier fixes are ignored), {cmd:'collect'}.
 */
import http from 'node:http';
import { Histogram } from './histogram.js';

const histogram = new Histogram();
let deliveries = 0;
let ignored = 0;
let since = 0;

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const receivedMs = Date.now();
    res.writeHead(204).end();
    try {
      const fixMs = Date.parse((JSON.parse(Buffer.concat(chunks).toString()) as { data?: { ts?: string } }).data?.ts ?? '');
      if (!Number.isFinite(fixMs) || fixMs < since) throw new Error('not timed');
      deliveries++;
      histogram.record((receivedMs - fixMs) * 1000);
    } catch {
      ignored++;
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as { port: number }).port }));
process.on('message', (message: { cmd: 'since'; since: number } | { cmd: 'collect' }) => {
  if (message.cmd === 'since') since = message.since;
  else process.send!({ collected: { deliveries, ignored, histogram: histogram.toJSON() } });
});
