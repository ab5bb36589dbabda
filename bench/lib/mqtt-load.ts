/**
 * A lean QoS 1 load generator, run as a child process (never in the server's event loop): raw TCP sockets,
 * pre-built packets, a fixed window of messages in flight per connection, publish→PUBACK latency per message.
 * Protocol with the parent over IPC: `start` → `connected` → `go` → `result`.
 */
import net from 'node:net';
import { connectPacket, DISCONNECT, PublishTemplate } from './mqtt-wire.js';
import { Histogram } from './histogram.js';

export interface LoadDevice {
  id: string;
  token: string;
}

export interface LoadStart {
  cmd: 'start';
  host: string;
  port: number;
  devices: LoadDevice[];
  window: number;
  fixesPerMessage: number;
  /** Each device's fixes are stamped from here on, 1 ms apart: every fix time distinct. */
  tsBase: number;
  warmupMs: number;
  durationMs: number;
}

export interface LoadResult {
  cmd: 'result';
  /** PUBACKs received during the measured interval, and the fixes they carried. */
  messages: number;
  fixes: number;
  /** Every PUBACK and every PUBLISH of the run, warm-up and drain included. */
  ackedTotal: number;
  sentTotal: number;
  unacked: number;
  measuredMs: number;
  histogram: number[];
  connectErrors: number;
  /** Messages the server answered but refused whole (WebSocket `busy`): nothing of them stored. */
  refused?: number;
}

class Connection {
  private readonly sentAt = new Float64Array(65536);
  private nextId = 1;
  private nextTs: number;
  private inFlight = 0;
  private pending: Buffer | null = null;
  connected = false;

  constructor(readonly socket: net.Socket, readonly template: PublishTemplate, tsBase: number, private readonly run: Run) {
    this.nextTs = tsBase;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', () => {});
  }

  private onData(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let o = 0;
    let acks = 0;
    const now = performance.now();
    while (o + 2 <= buf.length) {
      const type = buf[o]! >> 4;
      const len = buf[o + 1]!; // CONNACK and PUBACK: remaining length 2, one byte
      if (o + 2 + len > buf.length) break;
      if (type === 2) {
        this.connected = buf[o + 3] === 0;
        this.run.onConnack(this);
      } else if (type === 4) {
        const id = (buf[o + 2]! << 8) | buf[o + 3]!;
        this.run.onAck(now - this.sentAt[id]!, this.template.fixes);
        this.inFlight--;
        acks++;
      }
      o += 2 + len;
    }
    if (o < buf.length) this.pending = Buffer.from(buf.subarray(o));
    if (acks > 0) this.fill();
  }

  /** Tops the window up in one write. */
  fill(): void {
    if (!this.run.sending) return;
    const count = this.run.window - this.inFlight;
    if (count <= 0) return;
    const out = Buffer.allocUnsafe(count * this.template.length);
    let o = 0;
    const now = performance.now();
    for (let i = 0; i < count; i++) {
      const id = this.nextId;
      this.nextId = id === 65535 ? 1 : id + 1;
      this.sentAt[id] = now;
      o = this.template.writeTo(out, o, id, this.nextTs);
      this.nextTs += this.template.fixes;
    }
    this.inFlight += count;
    this.run.sentTotal += count;
    this.socket.write(out);
  }

  get outstanding(): number {
    return this.inFlight;
  }
}

class Run {
  sending = false;
  measuring = false;
  messages = 0;
  fixes = 0;
  ackedTotal = 0;
  sentTotal = 0;
  readonly histogram = new Histogram();
  connections: Connection[] = [];
  private connackWaiters = new Map<Connection, () => void>();

  constructor(readonly window: number) {}

  onConnack(conn: Connection): void {
    this.connackWaiters.get(conn)?.();
    this.connackWaiters.delete(conn);
  }

  onAck(latencyMs: number, fixes: number): void {
    this.ackedTotal++;
    if (!this.measuring) return;
    this.messages++;
    this.fixes += fixes;
    this.histogram.record(latencyMs * 1000);
  }

  waitConnack(conn: Connection): Promise<void> {
    return new Promise((resolve) => this.connackWaiters.set(conn, resolve));
  }
}

async function connectAll(start: LoadStart, run: Run): Promise<number> {
  let errors = 0;
  const queue = start.devices.map((d, i) => ({ d, i }));
  const workers = Array.from({ length: 50 }, async () => {
    for (let item = queue.shift(); item; item = queue.shift()) {
      const { d, i } = item;
      const template = new PublishTemplate(`fieldops/${d.id}/gps`, start.fixesPerMessage, 40 + (i % 100) / 10, -3 - (i % 50) / 10);
      const socket = net.connect(start.port, start.host);
      const conn = new Connection(socket, template, start.tsBase, run);
      const acked = run.waitConnack(conn);
      await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); }).catch(() => {});
      socket.write(connectPacket(d.id, d.id, d.token));
      await Promise.race([acked, new Promise((r) => setTimeout(r, 10_000))]);
      if (conn.connected) run.connections.push(conn);
      else {
        errors++;
        socket.destroy();
      }
    }
  });
  await Promise.all(workers);
  return errors;
}

async function go(start: LoadStart, run: Run, connectErrors: number): Promise<LoadResult> {
  run.sending = true;
  for (const conn of run.connections) conn.fill();
  await new Promise((r) => setTimeout(r, start.warmupMs));
  run.measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, start.durationMs));
  run.measuring = false;
  const measuredMs = performance.now() - t0;
  run.sending = false;
  // Let what is in flight come back, so that the parent can compare PUBACKs with stored rows.
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && run.connections.some((c) => c.outstanding > 0)) await new Promise((r) => setTimeout(r, 20));
  const unacked = run.connections.reduce((n, c) => n + c.outstanding, 0);
  for (const conn of run.connections) conn.socket.end(DISCONNECT);
  return {
    cmd: 'result', messages: run.messages, fixes: run.fixes, ackedTotal: run.ackedTotal, sentTotal: run.sentTotal, unacked,
    measuredMs, histogram: run.histogram.toJSON(), connectErrors,
  };
}

let run: Run | null = null;
let started: LoadStart | null = null;
let connectErrors = 0;
process.on('message', (msg: LoadStart | { cmd: 'go' }) => {
  if (msg.cmd === 'start') {
    started = msg;
    run = new Run(msg.window);
    void connectAll(msg, run).then((errors) => {
      connectErrors = errors;
      process.send!({ cmd: 'connected', connections: run!.connections.length, errors });
    });
  } else if (msg.cmd === 'go') {
    void go(started!, run!, connectErrors).then((result) => {
      process.send!(result, () => process.exit(0));
    });
  }
});
