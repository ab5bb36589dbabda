/**
 * Hand-built MQTT 3.1.1 and protobuf bytes for the load generator: packets are built once per device and only
 * the packet id and the fixes' timestamps are patched per message, so the generator spends its CPU on the
 * socket, not on encoding (an mqtt.js generator tops out near 24k msgs/s per process here).
 */

/** MQTT's variable-length "remaining length" (2.2.3). */
export function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function utf8Field(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

export function connectPacket(clientId: string, username: string, password: string, keepaliveS = 120): Buffer {
  const variable = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0xc2, keepaliveS >> 8, keepaliveS & 0xff]);
  const payload = Buffer.concat([utf8Field(clientId), utf8Field(username), utf8Field(password)]);
  const body = Buffer.concat([variable, payload]);
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]);
}

export const DISCONNECT = Buffer.from([0xe0, 0x00]);

/** Timestamps between 2^35 and 2^42 ms (years 1971–2109) encode as exactly 6 varint bytes: patchable in place. */
const TS_VARINT_BYTES = 6;

function writeVarint6(buf: Buffer, offset: number, value: number): void {
  for (let i = 0; i < TS_VARINT_BYTES; i++) {
    const byte = value % 128;
    value = Math.floor(value / 128);
    buf[offset + i] = i < TS_VARINT_BYTES - 1 ? byte | 0x80 : byte;
  }
}

/** One GpsFix: ts (patched), lat, lon, speed, heading, accuracy, altitude, battery, seq. */
function gpsFix(lat: number, lon: number, seq: number): { bytes: Buffer; tsOffset: number } {
  const b = Buffer.alloc(1 + TS_VARINT_BYTES + 9 + 9 + 5 * 5 + 1 + 1);
  let o = 0;
  b[o++] = 0x08; // field 1 varint
  const tsOffset = o;
  o += TS_VARINT_BYTES;
  b[o++] = 0x11; b.writeDoubleLE(lat, o); o += 8; // field 2 double
  b[o++] = 0x19; b.writeDoubleLE(lon, o); o += 8; // field 3 double
  for (const [tag, value] of [[0x25, 8.5], [0x2d, 270], [0x35, 4], [0x3d, 120], [0x45, 77]] as const) {
    b[o++] = tag; b.writeFloatLE(value, o); o += 4; // fields 4–8 float
  }
  b[o++] = 0x48; b[o++] = seq & 0x7f; // field 9 varint
  return { bytes: b.subarray(0, o), tsOffset };
}

/** A PUBLISH (QoS 1, or QoS 0 without a packet id) of a GpsBatch of `fixes` fixes; `writeTo` sets its packet id and its fixes' timestamps. */
export class PublishTemplate {
  readonly packet: Buffer;
  /** Where the GpsBatch starts in the packet (the WebSocket and HTTP transports carry it alone). */
  readonly payloadOffset: number;
  private readonly idOffset: number;
  private readonly tsOffsets: number[] = [];

  constructor(topic: string, fixes: number, lat: number, lon: number, readonly qos: 0 | 1 = 1) {
    const parts: Buffer[] = [];
    const fixOffsets: number[] = [];
    let payloadLength = 0;
    for (let i = 0; i < fixes; i++) {
      const fix = gpsFix(lat + i * 1e-5, lon, i);
      const header = Buffer.from([0x0a, fix.bytes.length]); // GpsBatch field 1, length-delimited
      fixOffsets.push(payloadLength + header.length + fix.tsOffset);
      parts.push(header, fix.bytes);
      payloadLength += header.length + fix.bytes.length;
    }
    const topicField = utf8Field(topic);
    const idLength = qos === 1 ? 2 : 0;
    const remaining = topicField.length + idLength + payloadLength;
    const fixed = Buffer.from([qos === 1 ? 0x32 : 0x30, ...remainingLength(remaining)]); // PUBLISH, QoS 1 or 0
    this.packet = Buffer.concat([fixed, topicField, Buffer.alloc(idLength), ...parts]);
    this.idOffset = fixed.length + topicField.length;
    const payloadStart = this.idOffset + idLength;
    this.payloadOffset = payloadStart;
    for (const off of fixOffsets) this.tsOffsets.push(payloadStart + off);
  }

  /** Writes a copy of the packet into `out` at `offset` with this id and timestamps `firstTsMs + i`. */
  writeTo(out: Buffer, offset: number, packetId: number, firstTsMs: number): number {
    this.packet.copy(out, offset);
    if (this.qos === 1) {
      out[offset + this.idOffset] = packetId >> 8;
      out[offset + this.idOffset + 1] = packetId & 0xff;
    }
    for (let i = 0; i < this.tsOffsets.length; i++) writeVarint6(out, offset + this.tsOffsets[i]!, firstTsMs + i);
    return offset + this.packet.length;
  }

  get length(): number {
    return this.packet.length;
  }

  get fixes(): number {
    return this.tsOffsets.length;
  }
}
