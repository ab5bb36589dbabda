/**
 * A reconnect storm, as after a broker restart or a network cut: every device opens its socket at the same
 * moment, sends CONNECT, and once admitted publishes one QoS 1 fix. Raw sockets and pre-built packets, so
 * the generator costs little next to the server. Used in-process by test/ingest/storm.test.ts and as a child
 * process by `npm run bench -- storm` (IPC: `start` → `result`).
 */
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connectPacket, DISCONNECT, PublishTemplate } from './mqtt-wire.js';

export interface StormDevice {
  id: string;
  token: string;
}

export interface StormOptions {
  host: string;
  port: number;
  devices: StormDevice[];
  /** Each device's one fix is stamped at this time. */
  tsMs: number;
  /** Gives up on devices not publishing this long after the first socket was opened. */
  timeoutMs: number;
}

export interface StormResult {
  devices: number;
  /** CONNACK 0 received. */
  admitted: number;
  /** PUBACK of the device's fix received: committed. */
  publishing: number;
  /** CONNACK with a non-zero return code, by code. */
  refused: Record<number, number>;
  /** Sockets that failed or closed before their PUBACK. */
  failed: number;
  /** From the first socket opened to the last CONNACK 0 / the last PUBACK. */
  admittedMs: number;
  publishingMs: number;
  /** From the first socket opened to the TCP connect, the CONNACK 0, the PUBACK: median and 99th percentile. */
  percentilesMs: { connected: [number, number]; admitted: [number, number]; publishing: [number, number] };
}

export async function reconnectStorm(options: StormOptions): Promise<StormResult> {
  const result: StormResult = {
    devices: options.devices.length, admitted: 0, publishing: 0, refused: {}, failed: 0, admittedMs: 0, publishingMs: 0,
    percentilesMs: { connected: [0, 0], admitted: [0, 0], publishing: [0, 0] },
  };
  const times = { connected: [] as number[], admitted: [] as number[], publishing: [] as number[] };
  const sockets: net.Socket[] = [];
  const started = performance.now();
  let settled = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => { finish = resolve; });
  const done = () => {
    if (++settled === options.devices.length) finish();
  };
  for (const device of options.devices) {
    const template = new PublishTemplate(`fieldops/${device.id}/gps`, 1, 45 + Math.random(), 7 + Math.random());
    const publish = Buffer.allocUnsafe(template.length);
    template.writeTo(publish, 0, 1, options.tsMs);
    const socket = net.connect(options.port, options.host);
    sockets.push(socket);
    let state: 'connecting' | 'admitted' | 'done' = 'connecting';
    let pending = Buffer.alloc(0);
    socket.setNoDelay(true);
    socket.once('connect', () => {
      times.connected.push(performance.now() - started);
      socket.write(connectPacket(device.id, device.id, device.token));
    });
    socket.on('data', (chunk) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 4) { // CONNACK and PUBACK: 2-byte header, 2-byte body
        const type = pending[0]! >> 4;
        if (type === 2 && state === 'connecting') {
          const code = pending[3]!;
          if (code === 0) {
            state = 'admitted';
            result.admitted++;
            result.admittedMs = performance.now() - started;
            times.admitted.push(result.admittedMs);
            socket.write(publish);
          } else {
            state = 'done';
            result.refused[code] = (result.refused[code] ?? 0) + 1;
            done();
          }
        } else if (type === 4 && state === 'admitted') {
          state = 'done';
          result.publishing++;
          result.publishingMs = performance.now() - started;
          times.publishing.push(result.publishingMs);
          done();
        }
        pending = pending.subarray(4);
      }
    });
    const fail = () => {
      if (state === 'done') return;
      state = 'done';
      result.failed++;
      done();
    };
    socket.on('error', fail);
    socket.on('close', fail);
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([finished, new Promise<void>((resolve) => { timer = setTimeout(resolve, options.timeoutMs); })]);
  clearTimeout(timer);
  for (const key of ['connected', 'admitted', 'publishing'] as const) result.percentilesMs[key] = [percentile(times[key], 0.5), percentile(times[key], 0.99)];
  for (const socket of sockets) {
    socket.removeAllListeners('close');
    socket.end(DISCONNECT);
  }
  return result;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);
}

/** The storm from a process of its own, so that the generator never shares the server's event loop. */
export function reconnectStormInChild(options: StormOptions): Promise<StormResult> {
  const child = fork(fileURLToPath(import.meta.url), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('message', (msg: { cmd: 'result'; result: StormResult }) => resolve(msg.result));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`storm generator exited with ${code} before its result`)));
    child.send({ cmd: 'start', ...options });
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.once('message', (start: StormOptions & { cmd: 'start' }) => {
    void reconnectStorm(start).then((result) => process.send!({ cmd: 'result', result }, () => process.exit(0)));
  });
}
