/**
 * A WebSocket ingest generator for bench/ingest.ts, in a child process: each device opens `/v1/ingest` with its token
 * and keeps `window` binary GpsBatch frames in flight, each answered by an ack frame after commit; the latency is
 * frame sent → ack. Frames answered `busy` (the server at its bound) are counted as errors and not resent.
 *
 * Parent → child: {cmd:'start', url, devices, window, fixesPerMessage, tsBase, warmupMs, durationMs}.
 * Child → parent: {connected, errors}, then {result: LoadResult} (the shape of bench/lib/mqtt-load.ts's).
 */
import WebSocket from 'ws';
import { Histogram } from './histogram.js';
import type { LoadResult, LoadStart } from './mqtt-load.js';
import { PublishTemplate } from './mqtt-wire.js';

/** What mqtt-load.ts starts with, the broker's address replaced by the WebSocket URL. */
type WsStart = Omit<LoadStart, 'host' | 'port'> & { url: string };

const histogram = new Histogram();
let measuring = false;
let sending = false;
/** `ackedTotal` counts the frames acknowledged as stored; `busy` those answered but refused whole. */
const totals = { messages: 0, fixes: 0, ackedTotal: 0, sentTotal: 0, busy: 0 };

class Device {
  private readonly sentAt: number[] = [];
  private nextTs: number;
  inFlight = 0;

  constructor(readonly socket: WebSocket, private readonly template: PublishTemplate, tsBase: number, private readonly window: number) {
    this.nextTs = tsBase;
    socket.on('message', (data) => this.onAck(JSON.parse(data.toString()) as { type: string; error?: string }));
  }

  fill(): void {
    while (sending && this.inFlight < this.window) {
      const out = Buffer.allocUnsafe(this.template.length);
      this.template.writeTo(out, 0, 0, this.nextTs);
      this.nextTs += this.template.fixes;
      this.sentAt.push(performance.now());
      this.inFlight++;
      totals.sentTotal++;
      this.socket.send(out.subarray(this.template.payloadOffset), { binary: true });
    }
  }

  /** Acks come in frame order: the oldest frame in flight is the one answered. */
  private onAck(ack: { type: string; error?: string }): void {
    if (ack.type !== 'ack') return;
    const sent = this.sentAt.shift()!;
    this.inFlight--;
    if (ack.error) totals.busy++;
    else totals.ackedTotal++;
    if (!ack.error && measuring) {
      totals.messages++;
      totals.fixes += this.template.fixes;
      histogram.record((performance.now() - sent) * 1000);
    }
    this.fill();
  }
}

let devices: Device[] = [];

async function connect(start: WsStart): Promise<number> {
  let errors = 0;
  const results = await Promise.all(start.devices.map((d, i) => new Promise<Device | null>((resolve) => {
    const socket = new WebSocket(`${start.url}?token=${encodeURIComponent(d.token)}`);
    socket.once('open', () => resolve(new Device(socket, new PublishTemplate('-', start.fixesPerMessage, 40 + (i % 100) / 10, -3 - (i % 50) / 10, 0), start.tsBase, start.window)));
    socket.once('error', () => {
      errors++;
      resolve(null);
    });
  })));
  devices = results.filter((d): d is Device => d !== null);
  return errors;
}

process.on('message', (message: WsStart | { cmd: 'go' }) => {
  if (message.cmd === 'start') {
    const start = message;
    void connect(start).then((errors) => {
      process.send!({ connected: devices.length, errors });
      process.once('message', () => void run(start, errors));
    });
  }
});

async function run(start: WsStart, connectErrors: number): Promise<void> {
  sending = true;
  for (const d of devices) d.fill();
  await new Promise((r) => setTimeout(r, start.warmupMs));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, start.durationMs));
  measuring = false;
  const measuredMs = performance.now() - t0;
  sending = false;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && devices.some((d) => d.inFlight > 0)) await new Promise((r) => setTimeout(r, 20));
  const unacked = devices.reduce((n, d) => n + d.inFlight, 0);
  for (const d of devices) d.socket.close();
  const result: LoadResult = {
    cmd: 'result', messages: totals.messages, fixes: totals.fixes, ackedTotal: totals.ackedTotal, sentTotal: totals.sentTotal, unacked,
    measuredMs, histogram: histogram.toJSON(), connectErrors, refused: totals.busy,
  };
  process.send!(result, () => process.exit(0));
}
