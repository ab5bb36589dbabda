import net from 'node:net';
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import type { Logger } from '../services/shared/log.js';
import type { Batcher } from './batcher.js';
import type { DeviceAuthenticator, DeviceRecord, DeviceSession } from './devices.js';
import type { IngestIntake } from './intake.js';
import { enforcePacketLimits, type PacketLimits } from './mqtt-packet-limits.js';
import { routeTelemetry } from './mqtt-telemetry-route.js';

/** MQTT 5 reason code for a PUBACK of a payload we could not accept (3.4.2.1: 0x99 Payload format invalid). */
const PAYLOAD_FORMAT_INVALID = 0x99;
// CONNACK return codes of MQTT 3.1.1 (3.2.2.3).
const IDENTIFIER_REJECTED = 2;
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;
const LISTEN_BACKLOG = 8192;

type TopicKind = 'gps' | 'gps_json' | 'punch' | 'punch_json';

class MqttSession implements DeviceSession {
  device: DeviceRecord;
  readonly topics: Map<string, TopicKind>;
  readonly commandPrefix: string;
  acks: number[] = [];
  ackQueued = false;
  forget: () => void = () => {};

  constructor(readonly client: Client, device: DeviceRecord) {
    this.device = device;
    const base = `fieldops/${device.id}/`;
    this.topics = new Map([[`${base}gps`, 'gps'], [`${base}gps/json`, 'gps_json'], [`${base}punch`, 'punch'], [`${base}punch/json`, 'punch_json']]);
    this.commandPrefix = `${base}cmd`;
  }

  disconnect(): void {
    this.client.close();
  }
}

const SESSION = Symbol('fieldops.session');
type SessionClient = Client & { [SESSION]?: MqttSession };

export interface MqttIngestOptions {
  host: string;
  port: number;
  directory: DeviceAuthenticator;
  batcher: Batcher;
  intake: IngestIntake;
  log: Logger;
  /** Packet sizes (MQTT_MAX_PACKET_BYTES, CONNECT 2 KiB) enforced from each packet's length header. */
  limits: PacketLimits;
  /** A socket that has not sent its CONNECT this long after the TCP connect is closed (MQTT_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs: number;
  onPause(): void;
  /** A packet over the limit ended a connection (of this device once logged in, null before). */
  onTooLarge(device: DeviceRecord | null): void;
  /**
   * A listening socket shared with the ingest's first process (INGEST_PROCESSES, ingest/processes.ts): connections
   * are accepted from it instead of from a server of our own on `host:port`.
   */
  sharedServer?: net.Server;
}

/**
 * The MQTT transport (docs/design.md, "Device contract") as aedes hooks. `authenticate` maps username/password to a device;
 * `authorizePublish` (or, for most of them, the telemetry route below) is where a telemetry message is decoded,
 * validated and handed to the batcher.
 *
 * A connected device's QoS 0 and 1 messages on its own telemetry topics take a shorter road: they are taken from
 * the client's packet parser before aedes handles them (routeTelemetry; no one may subscribe to them, so aedes's
 * publish machinery had nothing to do). The hook sees the rest: messages of a client not yet connected, on
 * other topics, QoS 2, or arriving while ingest is paused or closing.
 *
 * PUBACK after commit: for a QoS 1 message the hook keeps the packet id, lowers the packet to QoS 0 (so aedes
 * neither acknowledges it nor queues it for offline subscribers — no one may subscribe to telemetry topics) and
 * lets aedes go on reading at once; once the batch holding the message is committed, the PUBACKs of all of a
 * client's messages in that batch go out in one socket write, in the order received [MQTT-4.6.0-2]. Measured
 * (bench/ingest.ts, paired runs) against holding aedes's callback until commit and letting aedes write each
 * PUBACK: ~11 instead of ~15 µs of server CPU per single-fix message, and 10–25% more messages/s. QoS 2 (not in
 * the contract) takes the slow road: the callback is held until commit and aedes completes the handshake.
 *
 * Backpressure: while the batcher holds too many rows, the hook holds the callbacks of new messages; aedes reads
 * no further from a client until every packet of its last read is called back, so the sockets stop being read.
 */
export class MqttIngest {
  private broker: Aedes | null = null;
  private server: net.Server | null = null;
  private readonly sessions = new Set<MqttSession>();
  private held: (() => void)[] = [];
  private paused = false;
  private closing = false;
  private touched: MqttSession[] = [];
  private ackFlushQueued = false;
  port = 0;

  constructor(private readonly options: MqttIngestOptions) {}

  async start(): Promise<number> {
    this.broker = await Aedes.createBroker({
      maxClientsIdLength: 64, // applies to MQTT 3.1 only (default 23): a device id (36) must fit
      connectTimeout: this.options.connectTimeoutMs,
      authenticate: (client, username, password, done) => void this.authenticate(client as SessionClient, username, password, done),
      authorizePublish: (client, packet, done) => this.authorizePublish(client as SessionClient | null, packet, done),
      authorizeSubscribe: (client, sub, done) => this.authorizeSubscribe(client as SessionClient, sub, done),
    });
    this.broker.on('clientError', (client, err) => this.options.log.debug({ err, client_id: client.id }, 'mqtt client error'));
    const shared = this.options.sharedServer;
    if (shared) {
      shared.on('connection', (socket: net.Socket) => {
        socket.setNoDelay(true);
        this.accept(socket);
      });
      this.server = shared;
      this.port = (shared.address() as net.AddressInfo).port;
      return this.port;
    }
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      // A reconnect storm (every device at once after a restart or a network cut) must not overflow the
      // accept queue: the kernel caps the backlog at net.core.somaxconn anyway.
      this.server!.listen({ port: this.options.port, host: this.options.host, backlog: LISTEN_BACKLOG }, () => {
        this.server!.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Whether telemetry is taken before aedes (routeTelemetry); off for good once a client cannot be routed. */
  private telemetryRouted = true;

  private accept(socket: net.Socket): void {
    const client = this.broker!.handle(socket) as SessionClient;
    enforcePacketLimits(client, this.options.limits, (cmd, bytes) => {
      const device = client[SESSION]?.device ?? null;
      this.options.log.debug({ device_id: device?.id, cmd, bytes }, 'mqtt packet over the size limit: connection closed');
      this.options.onTooLarge(device);
    });
    if (this.telemetryRouted) {
      try {
        routeTelemetry(client, (packet) => this.takeTelemetry(client, packet));
      } catch (err) {
        // An aedes whose client no longer looks as the route expects: every message takes aedes's road.
        this.telemetryRouted = false;
        this.options.log.error({ err }, 'mqtt telemetry route unavailable; messages go through aedes');
      }
    }
  }

  /** The listening socket, to share with further ingest processes. */
  get listener(): net.Server {
    return this.server!;
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  private async authenticate(client: SessionClient, username: string | undefined, password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void): Promise<void> {
    const refuse = (returnCode: number, message: string) => done(Object.assign(new Error(message), { returnCode }) as AuthenticateError, false);
    if (this.closing) return refuse(SERVER_UNAVAILABLE, 'shutting down');
    const result = await this.options.directory.authenticate(password ? password.toString('utf8') : '', (client.conn as net.Socket).remoteAddress ?? '');
    if (!result.ok) {
      if (result.reason === 'unavailable') return refuse(SERVER_UNAVAILABLE, 'device registry unavailable');
      if (result.reason === 'rate_limited') return refuse(SERVER_UNAVAILABLE, 'too many failed logins from this address; retry later');
      return refuse(result.reason === 'device_disabled' ? NOT_AUTHORIZED : BAD_USERNAME_OR_PASSWORD, 'bad device id or token');
    }
    // username = device id: a token is only good together with the id it was issued to.
    if (!username || username.toLowerCase() !== result.device.id) return refuse(BAD_USERNAME_OR_PASSWORD, 'bad device id or token');
    // Client id = device id: aedes keys sessions by client id, so any other id would let one device take over
    // (or end, again and again) another device's session (docs/design.md, "Device contract").
    if (client.id.toLowerCase() !== result.device.id) return refuse(IDENTIFIER_REJECTED, 'client id must be the device id');
    if (client.closed || client.conn.destroyed) return refuse(SERVER_UNAVAILABLE, 'connection gone'); // left while we looked
    const session = new MqttSession(client, result.device);
    client[SESSION] = session;
    session.forget = this.options.directory.register(session);
    this.sessions.add(session);
    client.conn.once('close', () => {
      session.forget();
      this.sessions.delete(session);
    });
    done(null, true);
  }

  /**
   * The short road (routeTelemetry): a connected device's QoS 0 or 1 message on its own topic while ingest reads
   * on. Anything else goes to aedes and the hook: `false`. (Once `connected` is set, aedes has handled every
   * packet it queued during the CONNECT, so messages keep their order.)
   */
  private takeTelemetry(client: SessionClient, packet: PublishPacket): boolean {
    const session = client[SESSION];
    if (session === undefined || !client.connected || client.closed || this.closing || this.paused || packet.qos === 2) return false;
    const kind = session.topics.get(packet.topic);
    if (kind === undefined) return false;
    this.acceptTelemetry(session, kind, packet.payload as Buffer, packet.qos === 1, packet.messageId ?? 0);
    return true;
  }

  private authorizePublish(client: SessionClient | null, packet: PublishPacket, done: (error?: Error | null) => void): void {
    const session = client?.[SESSION];
    // Wills (published after a client is gone) never carry telemetry: the fix would be stale by then.
    if (!session || client!.closed) return done(new Error('not allowed'));
    const kind = session.topics.get(packet.topic);
    if (kind === undefined) {
      // MQTT 3.1.1 cannot refuse one PUBLISH: [MQTT-3.3.5-2] acknowledge it or close the connection; a device
      // writing to another device's topics is misconfigured or hostile, so it is closed (and counted).
      this.options.intake.reportUnauthorized(session.device, packet.topic);
      return done(new Error('topic not allowed for this device'));
    }
    if (this.closing) {
      return; // no longer reading: unacknowledged, the device sends it again after reconnecting elsewhere
    }
    packet.retain = false; // never keep telemetry as a retained message
    const qos = packet.qos;
    if (qos === 2) {
      // Held until commit; aedes then stores it and answers PUBREC.
      const isGps = kind === 'gps' || kind === 'gps_json';
      const format = kind === 'gps' || kind === 'punch' ? 'protobuf' : 'json';
      const intake = this.options.intake;
      const accepted = isGps ? intake.gps(session.device, packet.payload as Buffer, format, 'mqtt', releaseCallback, done, 0)
        : intake.punch(session.device, packet.payload as Buffer, format, 'mqtt', releaseCallback, done, 0);
      if (!accepted.stored) this.options.batcher.addMarker(releaseCallback, done, 0);
      return;
    }
    if (qos === 1) packet.qos = 0;
    this.acceptTelemetry(session, kind, packet.payload as Buffer, qos === 1, packet.messageId ?? 0);
    if (this.paused) this.held.push(() => done(null));
    else done(null);
  }

  /** A QoS 0 or 1 message to the intake; a QoS 1 message's PUBACK is queued for after the commit that holds it. */
  private acceptTelemetry(session: MqttSession, kind: TopicKind, payload: Buffer, ack: boolean, messageId: number): void {
    const isGps = kind === 'gps' || kind === 'gps_json';
    const format = kind === 'gps' || kind === 'punch' ? 'protobuf' : 'json';
    const intake = this.options.intake;
    const settle = ack ? this.queueAck : null;
    const accepted = isGps ? intake.gps(session.device, payload, format, 'mqtt', settle, session, messageId)
      : intake.punch(session.device, payload, format, 'mqtt', settle, session, messageId);
    // A refused QoS 1 message is still acknowledged (3.1.1 has no negative PUBACK; 5 gets 0x99), in order.
    if (!accepted.stored && ack) this.options.batcher.addMarker(this.queueAck, session, messageId | (PAYLOAD_FORMAT_INVALID << 16));
  }

  private authorizeSubscribe(client: SessionClient, sub: Subscription, done: (error: Error | null, subscription?: Subscription | null) => void): void {
    const session = client[SESSION];
    const prefix = session?.commandPrefix;
    // Only the device's own command topics: `fieldops/{id}/cmd`, `…/cmd/#` or anything below `…/cmd/`.
    const allowed = prefix !== undefined && (sub.topic === prefix || sub.topic.startsWith(`${prefix}/`));
    done(null, allowed ? sub : null); // null: SUBACK 0x80 for this filter, the connection stays
  }

  private readonly queueAck = (session: MqttSession, tag: number, failedRows = 0): void => {
    // Rows the database refused (a data error narrowed to this message) are answered like refused input.
    session.acks.push(failedRows > 0 ? (tag & 0xffff) | (PAYLOAD_FORMAT_INVALID << 16) : tag);
    if (session.ackQueued) return;
    session.ackQueued = true;
    this.touched.push(session);
    if (!this.ackFlushQueued) {
      this.ackFlushQueued = true;
      queueMicrotask(this.flushAcks);
    }
  };

  /** One write per client for all its PUBACKs of the batches settled in this tick. */
  private readonly flushAcks = (): void => {
    this.ackFlushQueued = false;
    const sessions = this.touched;
    this.touched = [];
    for (const session of sessions) {
      const acks = session.acks;
      session.acks = [];
      session.ackQueued = false;
      const client = session.client;
      if (client.closed || !client.connected) continue;
      client.conn.write(encodePubacks(acks, client.version === 5));
    }
  };

  /** Backpressure from the batcher: hold (on) or release (off) the callbacks that let aedes read on. */
  setPaused(on: boolean): void {
    this.paused = on;
    if (on) {
      this.options.onPause();
      return;
    }
    const held = this.held;
    this.held = [];
    for (const resume of held) resume();
  }

  /** Stops accepting connections and new messages; what was accepted is still committed and acknowledged. */
  stopIntake(): void {
    this.closing = true;
    this.server?.close();
  }

  /** Closes every client and the broker. */
  async close(): Promise<void> {
    this.stopIntake();
    const broker = this.broker;
    this.broker = null;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    for (const session of this.sessions) session.client.conn.destroy();
  }
}

function releaseCallback(done: (error?: Error | null) => void): void {
  done(null);
}

/**
 * PUBACK: 0x40, remaining length, packet id. A refused message's tag carries reason 0x99 in its high bits; MQTT 5
 * clients get it as the PUBACK reason code (remaining length 3, properties omitted: 3.4.2.2.1), 3.1.1 clients
 * the plain PUBACK, which is all that version can say.
 */
function encodePubacks(tags: number[], v5: boolean): Buffer {
  let size = 0;
  for (const tag of tags) size += v5 && tag > 0xffff ? 5 : 4;
  const buf = Buffer.allocUnsafe(size);
  let o = 0;
  for (const tag of tags) {
    const reason = tag >>> 16;
    buf[o++] = 0x40;
    buf[o++] = v5 && reason ? 3 : 2;
    buf[o++] = (tag >>> 8) & 0xff;
    buf[o++] = tag & 0xff;
    if (v5 && reason) buf[o++] = reason;
  }
  return buf;
}
