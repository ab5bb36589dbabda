/**
 * Lean WebSocket receivers for bench/fanout.ts, in a child process: raw TCP sockets that do the
 * upgrade by hand and count server frames by walking their headers, without decoding payloads —
 * a `ws` client parsing every frame would measure itself, not the server. The first few sockets
 * (`sample`) decode each frame and time it: receive time minus the position's `ts`.
 *
 * Parent → child: {cmd:'connect', host, port, path, count, sample, subscribe}, {cmd:'mark'}, {cmd:'count'}, {cmd:'close'}.
 * Child → parent: {connected}, {mark: {frames, latenciesMs}}, {count: frames} (the pacing of an unpaced run), {closed}.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

interface Receiver {
  socket: net.Socket;
  upgraded: boolean;
  header: Buffer;
  /** Payload bytes of the current frame still to skip (or to collect, for a sampled socket). */
  remaining: number;
  /** Bytes of a frame header split across chunks. */
  partial: Buffer | null;
  opcode: number;
  sampled: boolean;
  payload: Buffer[];
}

let frames = 0;
let latencies: number[] = [];
const receivers: Receiver[] = [];

function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const length = payload.length;
  const header = length < 126 ? Buffer.from([0x80 | opcode, 0x80 | length]) : Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff]);
  const body = Buffer.alloc(length);
  for (let i = 0; i < length; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([header, mask, body]);
}

function onFrame(r: Receiver, opcode: number, payload: Buffer | null): void {
  if (opcode === 0x9) r.socket.write(maskedFrame(0xa, payload ?? Buffer.alloc(0)));
  if (opcode !== 0x1 && opcode !== 0x2) return;
  frames++;
  if (payload) {
    const ts = (JSON.parse(payload.toString()) as { ts?: string }).ts;
    if (ts) latencies.push(Date.now() - Date.parse(ts));
  }
}

/** Walks the frames in a chunk; only control frames and sampled sockets keep payload bytes. */
function consume(r: Receiver, chunk: Buffer): void {
  let at = 0;
  if (r.partial) {
    chunk = Buffer.concat([r.partial, chunk]);
    r.partial = null;
  }
  while (at < chunk.length) {
    if (r.remaining > 0) {
      const take = Math.min(r.remaining, chunk.length - at);
      if (r.sampled || r.opcode >= 0x8) r.payload.push(chunk.subarray(at, at + take));
      r.remaining -= take;
      at += take;
      if (r.remaining === 0) finishFrame(r);
      continue;
    }
    if (chunk.length - at < 2) break;
    const opcode = chunk[at]! & 0x0f;
    let length = chunk[at + 1]! & 0x7f;
    let headerLength = 2;
    if (length === 126) headerLength = 4;
    else if (length === 127) headerLength = 10;
    if (chunk.length - at < headerLength) break;
    if (length === 126) length = chunk.readUInt16BE(at + 2);
    else if (length === 127) length = Number(chunk.readBigUInt64BE(at + 2));
    at += headerLength;
    r.opcode = opcode;
    r.remaining = length;
    r.payload = [];
    if (length === 0) finishFrame(r);
  }
  if (at < chunk.length) r.partial = Buffer.from(chunk.subarray(at));
}

function finishFrame(r: Receiver): void {
  const keep = r.sampled || r.opcode >= 0x8;
  onFrame(r, r.opcode, keep ? Buffer.concat(r.payload) : null);
  r.payload = [];
}

function open(host: string, port: number, path: string, subscribe: string, sampled: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    const r: Receiver = { socket, upgraded: false, header: Buffer.alloc(0), remaining: 0, partial: null, opcode: 0, sampled, payload: [] };
    socket.on('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
        + `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      if (r.upgraded) return consume(r, chunk);
      r.header = Buffer.concat([r.header, chunk]);
      const end = r.header.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!r.header.subarray(0, 12).toString().includes('101')) return reject(new Error(r.header.subarray(0, end).toString()));
      r.upgraded = true;
      if (subscribe) socket.write(maskedFrame(0x1, Buffer.from(subscribe)));
      receivers.push(r);
      resolve();
      if (r.header.length > end + 4) consume(r, r.header.subarray(end + 4));
    });
    socket.on('error', reject);
  });
}

process.on('message', async (message: { cmd: string; host: string; port: number; path: string; count: number; sample: number; subscribe: string }) => {
  if (message.cmd === 'connect') {
    const { host, port, path, count, sample, subscribe } = message;
    for (let i = 0; i < count; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, j) => open(host, port, path, subscribe, i + j < sample)));
    }
    process.send!({ connected: receivers.length });
  } else if (message.cmd === 'mark') {
    process.send!({ mark: { frames, latenciesMs: latencies } });
    latencies = [];
  } else if (message.cmd === 'count') {
    process.send!({ count: frames });
  } else if (message.cmd === 'close') {
    for (const r of receivers) r.socket.destroy();
    receivers.length = 0;
    frames = 0;
    latencies = [];
    process.send!({ closed: true });
  }
});
process.send!({ ready: true });
