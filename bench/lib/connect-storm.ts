/**
 * The connect storm of bench/ingest.ts, in a child process: every device of its slice opens a TCP connection and
 * sends an authenticated CONNECT at once (up to `concurrency` handshakes outstanding), timing TCP connect → CONNACK.
 * The connections stay open until the parent has read the server's memory, then close.
 *
 * Parent → child: {cmd:'start', host, port, devices, concurrency}, {cmd:'close'}.
 * Child → parent: {storm: StormResult}, {closed}.
 */
import net from 'node:net';
import { Histogram } from './histogram.js';
import type { LoadDevice } from './mqtt-load.js';
import { connectPacket, DISCONNECT } from './mqtt-wire.js';

export interface StormResult {
  admitted: number;
  refused: number;
  /** From the first connect to the last CONNACK. */
  seconds: number;
  histogram: number[];
}

const sockets: net.Socket[] = [];

function handshake(host: string, port: number, device: LoadDevice, histogram: Histogram): Promise<boolean> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => done(false), 30_000);
    const done = (admitted: boolean) => {
      clearTimeout(timer);
      if (admitted) {
        histogram.record((performance.now() - started) * 1000);
        sockets.push(socket);
      } else socket.destroy();
      resolve(admitted);
    };
    socket.once('connect', () => socket.write(connectPacket(device.id, device.id, device.token)));
    socket.once('data', (chunk: Buffer) => done(chunk[0] === 0x20 && chunk[3] === 0)); // CONNACK, return code 0
    socket.once('error', () => done(false));
  });
}

process.on('message', async (message: { cmd: 'start'; host: string; port: number; devices: LoadDevice[]; concurrency: number } | { cmd: 'close' }) => {
  if (message.cmd === 'start') {
    const histogram = new Histogram();
    const queue = [...message.devices];
    let admitted = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: message.concurrency }, async () => {
      for (let d = queue.shift(); d; d = queue.shift()) if (await handshake(message.host, message.port, d, histogram)) admitted++;
    }));
    const storm: StormResult = { admitted, refused: message.devices.length - admitted, seconds: (performance.now() - started) / 1000, histogram: histogram.toJSON() };
    process.send!({ storm });
  } else {
    for (const s of sockets) s.end(DISCONNECT);
    process.send!({ closed: true }, () => process.exit(0));
  }
});
