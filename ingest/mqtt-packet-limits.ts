import type { Client } from 'aedes';

/** A CONNECT carries a client id, a username (device id), a password (token) and perhaps a will: never more. */
export const MAX_CONNECT_BYTES = 2048;

export interface PacketLimits {
  /** Largest remaining length of any packet but CONNECT (MQTT_MAX_PACKET_BYTES). */
  maxPacketBytes: number;
  /** Largest remaining length of a CONNECT. */
  maxConnectBytes: number;
}

/** The part of mqtt-packet's parser (one per aedes client, `client._parser`) that the limit hooks into. */
interface PacketParser {
  packet: { cmd?: string; length: number };
  _list: { length: number; consume(bytes: number): void };
  _parseLength(this: PacketParser): boolean;
}

/**
 * Ends a connection as soon as a packet's length header announces more than the limit, before its body is
 * buffered (docs/design.md, "Device contract"). aedes 1.x has no packet-size setting and mqtt-packet's parser
 * gathers a whole packet in memory before handing it on, so a CONNECT claiming 200 MB would be held as it
 * streams in. The check wraps the parser's length step of this one client: the header is read (fixed header,
 * then remaining length), compared, and the socket destroyed with whatever little it had buffered.
 * test/ingest/mqtt-limits.test.ts pins this behaviour, so an aedes or mqtt-packet upgrade that moves it fails there.
 */
export function enforcePacketLimits(client: Client, limits: PacketLimits, onTooLarge: (cmd: string, bytes: number) => void): void {
  const parser = (client as unknown as { _parser?: PacketParser })._parser;
  if (!parser || typeof parser._parseLength !== 'function') {
    throw new Error('aedes client without the expected mqtt-packet parser: MQTT packet limits cannot be enforced');
  }
  const parseLength = parser._parseLength;
  parser._parseLength = function parseLengthWithinLimit(this: PacketParser): boolean {
    if (!parseLength.call(this)) return false;
    const cmd = this.packet.cmd ?? 'unknown';
    const limit = cmd === 'connect' ? limits.maxConnectBytes : limits.maxPacketBytes;
    if (this.packet.length <= limit) return true;
    this._list.consume(this._list.length);
    onTooLarge(cmd, this.packet.length);
    client.conn.destroy();
    return false; // the parser stops here: nothing more is read from this socket
  };
}
