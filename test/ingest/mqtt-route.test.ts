import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createDevice, createOrg, type TestOrg } from '../support/factories.js';
import { waitFor } from '../support/wait.js';
import { connectPacket, PublishTemplate } from '../../bench/lib/mqtt-wire.js';
import { startIngest, type IngestUnderTest } from './support.js';

let db: TestDatabase;
let sut: IngestUnderTest;
let org: TestOrg;

beforeAll(async () => {
  db = await createTestDatabase();
  sut = await startIngest(db.config);
  org = await createOrg(db.owner);
});

afterAll(async () => {
  await sut?.close();
  await db?.drop();
});

/** A device on a raw socket: what it receives, parsed into CONNACK codes and PUBACK ids in arrival order. */
async function rawDevice(deviceId: string, token: string, keepaliveS: number, first: Buffer[] = []) {
  const { port } = new URL(sut.mqttUrl);
  const socket = net.connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const seen = { connack: -1, pubacks: [] as number[], closed: false };
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4) { // CONNACK and PUBACK: 4 bytes each
      if (pending[0] === 0x20) seen.connack = pending[3]!;
      else if (pending[0] === 0x40) seen.pubacks.push(pending.readUInt16BE(2));
      pending = pending.subarray(4);
    }
  });
  socket.on('close', () => { seen.closed = true; });
  socket.on('error', () => {});
  socket.write(Buffer.concat([connectPacket(deviceId, deviceId, token, keepaliveS), ...first]));
  return { socket, seen };
}

function publishes(deviceId: string, ids: number[], firstTsMs: number): Buffer {
  const template = new PublishTemplate(`fieldops/${deviceId}/gps`, 1, 48.85, 2.35);
  const out = Buffer.alloc(template.length * ids.length);
  ids.forEach((id, i) => template.writeTo(out, i * template.length, id, firstTsMs + i));
  return out;
}

async function storedCount(deviceId: string): Promise<number> {
  const { rows } = await db.owner.query<{ n: string }>('select count(*) as n from positions where device_id = $1', [deviceId]);
  return Number(rows[0]!.n);
}

describe('telemetry taken from the parser before aedes (ingest/mqtt-telemetry-route.ts)', () => {
  it('keeps a device that only publishes telemetry alive past its keep-alive (each message restarts the timer)', async () => {
    const device = await createDevice(db.owner, org.id);
    const { socket, seen } = await rawDevice(device.id, device.token, 1); // the server closes after 1.5 s without a packet
    await waitFor(() => seen.connack === 0);
    const t0 = Date.now() - 60_000;
    for (let i = 1; i <= 10; i++) {
      socket.write(publishes(device.id, [i], t0 + i));
      await new Promise((r) => setTimeout(r, 300)); // 3 s in all: twice the keep-alive's grace
    }
    await waitFor(() => seen.pubacks.length === 10);
    expect(seen.closed).toBe(false);
    expect(seen.pubacks).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await storedCount(device.id)).toBe(10);
    socket.destroy();
  });

  it('answers in order messages sent in the CONNECT\'s own write (aedes queues them) and those after it', async () => {
    const device = await createDevice(db.owner, org.id);
    const t0 = Date.now() - 60_000;
    const { socket, seen } = await rawDevice(device.id, device.token, 60, [publishes(device.id, [1, 2, 3], t0)]);
    await waitFor(() => seen.connack === 0);
    socket.write(publishes(device.id, [4, 5, 6], t0 + 3));
    await waitFor(() => seen.pubacks.length === 6);
    expect(seen.pubacks).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await storedCount(device.id)).toBe(6);
    socket.destroy();
  });
});
