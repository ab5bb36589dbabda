/**
 * An open-loop MQTT load generator, run as a child process: devices on raw TCP sockets publish single-fix GpsBatch
 * messages at a fixed offered rate (the rate does not bend to the server's pace, as real fleets do not), each fix
 * stamped with its send time, so that every later hop — commit, geofence event, live socket, webhook — reads its
 * latency from the fix's own `ts`. Each device drives in and out of its fence: `cycle` fixes inside, then `cycle`
 * outside. QoS 1 records publish→PUBACK (committed) latency; QoS 0 publishes only.
 *
 * Parent → child: {cmd:'start', …RateStart}, {cmd:'go'}, {cmd:'window'}, {cmd:'measure', on}, {cmd:'stop'}.
 * Child → parent: {connected, errors}, {window: RateWindow} (on request), {result: RateResult} (after stop).
 * A window's histogram holds the acknowledgements that arrived in it; the result's `measured` histogram holds those
 * of the messages sent while measuring was on, whenever their acknowledgement came — an open-loop latency.
 */
import net from 'node:net';
import { Histogram } from './histogram.js';
import { connectPacket, DISCONNECT, PublishTemplate } from './mqtt-wire.js';

export interface RateDevice {
  id: string;
  token: string;
  inside: [lat: number, lon: number];
  outside: [lat: number, lon: number];
}

export interface RateStart {
  cmd: 'start';
  host: string;
  port: number;
  devices: RateDevice[];
  perSecond: number;
  cycle: number;
  qos: 0 | 1;
}

/** What happened since the previous window (or since `go`). */
export interface RateWindow {
  sent: number;
  acked: number;
  /** Messages not sent because their device already had this many unacknowledged: the server fell behind. */
  shed: number;
  histogram: number[];
}

export interface RateResult extends RateWindow {
  unacked: number;
  seconds: number;
  /** Publish → PUBACK of the messages sent while measuring. */
  measured: number[];
}

/** Unacknowledged messages per device past which the generator sheds load instead of queueing without bound. */
const MAX_IN_FLIGHT = 2000;
const TICK_MS = 5;

class Device {
  readonly sentAt = new Float64Array(65536);
  /** Packet ids sent while measuring (1) or not (0). */
  readonly measuredIds = new Uint8Array(65536);
  private readonly templates: [PublishTemplate, PublishTemplate];
  private nextId = 1;
  private lastTs = 0;
  /** Fixes sent; starts at the device's place in the cycle, so that the fleet's transitions spread evenly in time. */
  private count: number;
  inFlight = 0;
  connected = false;
  private pending: Buffer | null = null;

  constructor(readonly socket: net.Socket, device: RateDevice, index: number, private readonly start: RateStart,
    private readonly onAck: (latencyMs: number, measured: boolean) => void, private readonly onConnack: () => void) {
    this.count = index % (2 * start.cycle);
    const topic = `fieldops/${device.id}/gps`;
    this.templates = [new PublishTemplate(topic, 1, ...device.inside, start.qos), new PublishTemplate(topic, 1, ...device.outside, start.qos)];
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
  }

  publish(): void {
    const template = this.templates[Math.floor(this.count++ / this.start.cycle) % 2]!;
    // The device clock: now, but never twice the same millisecond (a repeated fix time is a duplicate).
    const ts = Math.max(Date.now(), this.lastTs + 1);
    this.lastTs = ts;
    const out = Buffer.allocUnsafe(template.length);
    const id = this.nextId;
    this.nextId = id === 65535 ? 1 : id + 1;
    template.writeTo(out, 0, id, ts);
    if (this.start.qos === 1) {
      this.sentAt[id] = performance.now();
      this.measuredIds[id] = measuring ? 1 : 0;
      this.inFlight++;
    }
    this.socket.write(out);
  }

  private onData(chunk: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let o = 0;
    const now = performance.now();
    while (o + 2 <= buf.length) {
      const type = buf[o]! >> 4;
      const len = buf[o + 1]!; // CONNACK and PUBACK: remaining length 2
      if (o + 2 + len > buf.length) break;
      if (type === 2) {
        this.connected = buf[o + 3] === 0;
        this.onConnack();
      } else if (type === 4) {
        const id = (buf[o + 2]! << 8) | buf[o + 3]!;
        this.inFlight--;
        this.onAck(now - this.sentAt[id]!, this.measuredIds[id] === 1);
      }
      o += 2 + len;
    }
    if (o < buf.length) this.pending = Buffer.from(buf.subarray(o));
  }
}

let start: RateStart;
let devices: Device[] = [];
let window: RateWindow = { sent: 0, acked: 0, shed: 0, histogram: [] };
let windowHistogram = new Histogram();
const total = { sent: 0, acked: 0, shed: 0, histogram: new Histogram() };
const measured = new Histogram();
let measuring = false;
let timer: NodeJS.Timeout | null = null;
let startedAt = 0;

function onAck(latencyMs: number, sentMeasuring: boolean): void {
  window.acked++;
  total.acked++;
  windowHistogram.record(latencyMs * 1000);
  total.histogram.record(latencyMs * 1000);
  if (sentMeasuring) measured.record(latencyMs * 1000);
}

async function connectAll(list: RateDevice[]): Promise<number> {
  let errors = 0;
  const queue = list.map((d, index) => ({ d, index }));
  await Promise.all(Array.from({ length: 50 }, async () => {
    for (let item = queue.shift(); item; item = queue.shift()) {
      const { d, index } = item;
      const socket = net.connect(start.port, start.host);
      let acked!: () => void;
      const connack = new Promise<void>((resolve) => (acked = resolve));
      const device = new Device(socket, d, index, start, onAck, () => acked());
      await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); }).catch(() => {});
      socket.write(connectPacket(d.id, d.id, d.token));
      await Promise.race([connack, new Promise((r) => setTimeout(r, 10_000))]);
      if (device.connected) devices.push(device);
      else {
        errors++;
        socket.destroy();
      }
    }
  }));
  return errors;
}

/** Every tick, the messages due by now at the offered rate, round-robin over the devices. */
function go(): void {
  startedAt = performance.now();
  let issued = 0;
  let next = 0;
  timer = setInterval(() => {
    const due = Math.floor(((performance.now() - startedAt) / 1000) * start.perSecond) - issued;
    for (let i = 0; i < due && devices.length > 0; i++) {
      const device = devices[next++ % devices.length]!;
      issued++;
      if (device.inFlight >= MAX_IN_FLIGHT) {
        window.shed++;
        total.shed++;
        continue;
      }
      device.publish();
      window.sent++;
      total.sent++;
    }
  }, TICK_MS);
}

async function stop(): Promise<RateResult> {
  if (timer) clearInterval(timer);
  const seconds = (performance.now() - startedAt) / 1000;
  // What is in flight comes back (or not) within a few seconds; then the devices say goodbye.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && devices.some((d) => d.inFlight > 0)) await new Promise((r) => setTimeout(r, 20));
  const unacked = devices.reduce((n, d) => n + d.inFlight, 0);
  for (const d of devices) d.socket.end(DISCONNECT);
  return { sent: total.sent, acked: total.acked, shed: total.shed, histogram: total.histogram.toJSON(), unacked, seconds, measured: measured.toJSON() };
}

process.on('message', (message: RateStart | { cmd: 'go' | 'window' | 'stop' } | { cmd: 'measure'; on: boolean }) => {
  if (message.cmd === 'start') {
    start = message;
    devices = [];
    void connectAll(message.devices).then((errors) => process.send!({ connected: devices.length, errors }));
  } else if (message.cmd === 'go') {
    go();
  } else if (message.cmd === 'measure') {
    measuring = message.on;
  } else if (message.cmd === 'window') {
    process.send!({ window: { ...window, histogram: windowHistogram.toJSON() } });
    window = { sent: 0, acked: 0, shed: 0, histogram: [] };
    windowHistogram = new Histogram();
  } else if (message.cmd === 'stop') {
    void stop().then((result) => process.send!({ result }, () => process.exit(0)));
  }
});
