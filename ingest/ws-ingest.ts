import type uWS from 'uWebSockets.js';
import type { Logger } from '../services/shared/log.js';
import type { Batcher } from './batcher.js';
import type { FixRejection, RejectReason } from './decode.js';
import type { DeviceAuthenticator, DeviceRecord, DeviceSession } from './devices.js';
import type { IngestIntake } from './intake.js';
import { rateLimited, unauthorized, unavailable } from '../services/shared/contracts/errors.js';
import { bearerToken, sendError } from '../services/shared/uws-http.js';

/** Frames of one socket waiting for their commit, past which new frames are answered `busy`. */
const MAX_FRAMES_IN_FLIGHT = 256;
/** Bytes of acks the client has not read yet, past which acks wait in memory (sent on `drain`) and frames are `busy`. */
const MAX_BUFFERED_BYTES = 256 * 1024;
/** Acks held for a client that reads none: past this it is closed (4008), as it will never catch up. */
const MAX_HELD_ACKS = 10_000;
export const WS_CLOSE_DEVICE_REVOKED = 4001;
const RETRY_SOON = { 'retry-after': '1' };
export const WS_CLOSE_SLOW_READER = 4008;

/**
 * The ack frame, one per binary (protobuf) or text (JSON) GpsBatch frame, in frame order, after the commit:
 *   {"type":"ack","seq":n,"accepted":k,"rejected":[{"index":i,"reason":"invalid_lat"}]}
 * `seq` counts the socket's frames from 1. `accepted` fixes are stored (a duplicate counts: it was stored before);
 * `rejected` lists the fixes dropped one by one. A frame refused whole adds `"error":"<reason>"` (undecodable,
 * empty_batch, batch_too_large), and `"error":"busy","retry":true` when it was not taken at all (the server is
 * at its backlog bound, or this socket has too many frames in flight or acks unread): nothing of it was stored.
 */
interface AckFrame {
  session: WsSession;
  seq: number;
  accepted: number;
  rejected: FixRejection[];
  error?: RejectReason | 'busy';
}

interface WsUserData {
  device: DeviceRecord;
  session?: WsSession;
}

class WsSession implements DeviceSession {
  device: DeviceRecord;
  frames = 0;
  inFlight = 0;
  heldAcks: string[] = [];
  closed = false;
  forget: () => void = () => {};

  constructor(readonly ws: uWS.WebSocket<WsUserData>, device: DeviceRecord) {
    this.device = device;
  }

  disconnect(reason: string): void {
    if (!this.closed) this.ws.end(WS_CLOSE_DEVICE_REVOKED, reason);
  }
}

export interface WsIngestOptions {
  app: uWS.TemplatedApp;
  /** Completes the upgrade once the device token has been checked (UwsServer.upgradeLater). */
  upgradeLater(res: uWS.HttpResponse, upgrade: () => void): void;
  directory: DeviceAuthenticator;
  batcher: Batcher;
  intake: IngestIntake;
  maxPayloadBytes: number;
  log: Logger;
}

/** WebSocket ingest at `/v1/ingest` (docs/design.md, "Device contract"): the same intake, batcher and guarantees as MQTT. */
export class WsIngest {
  private readonly sessions = new Set<WsSession>();
  private closing = false;

  constructor(private readonly options: WsIngestOptions) {}

  register(): void {
    const { app, directory } = this.options;
    app.ws<WsUserData>('/v1/ingest', {
      maxPayloadLength: this.options.maxPayloadBytes,
      maxBackpressure: 4 * MAX_BUFFERED_BYTES,
      idleTimeout: 120,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const token = bearerToken(req);
        const key = req.getHeader('sec-websocket-key');
        const protocol = req.getHeader('sec-websocket-protocol');
        const extensions = req.getHeader('sec-websocket-extensions');
        let aborted = false;
        res.onAborted(() => { aborted = true; });
        if (this.closing) {
          sendError(res, unavailable('shutting down'));
          return;
        }
        const source = Buffer.from(res.getRemoteAddressAsText()).toString();
        void directory.authenticate(token, source).then((result) => {
          if (aborted) return;
          if (result.ok) {
            this.options.upgradeLater(res, () => res.upgrade<WsUserData>({ device: result.device }, key, protocol, extensions, context));
            return;
          }
          res.cork(() => {
            if (result.reason === 'unavailable') sendError(res, unavailable('device registry unavailable'), { headers: RETRY_SOON });
            else if (result.reason === 'rate_limited') {
              sendError(res, rateLimited('too many failed device logins from this address'), { headers: { 'retry-after': '60' } });
            }
            else sendError(res, unauthorized('missing or invalid device token'));
          });
        });
      },
      open: (ws) => {
        const data = ws.getUserData();
        const session = new WsSession(ws, data.device);
        data.session = session;
        session.forget = directory.register(session);
        this.sessions.add(session);
      },
      message: (ws, message, isBinary) => this.onFrame(ws.getUserData().session!, message, isBinary),
      drain: (ws) => this.sendHeldAcks(ws.getUserData().session!),
      close: (ws) => {
        const session = ws.getUserData().session!;
        session.closed = true;
        session.forget();
        this.sessions.delete(session);
      },
    });
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  private onFrame(session: WsSession, message: ArrayBuffer, isBinary: boolean): void {
    const frame: AckFrame = { session, seq: ++session.frames, accepted: 0, rejected: [] };
    const { batcher, intake } = this.options;
    if (this.closing || batcher.underPressure || session.inFlight >= MAX_FRAMES_IN_FLIGHT
      || session.heldAcks.length > 0 || session.ws.getBufferedAmount() > MAX_BUFFERED_BYTES) {
      // No way to stop reading one uWS socket: refusing the frame (retry later) is this transport's backpressure.
      frame.error = 'busy';
    } else {
      // Decoded right here: the ArrayBuffer is only valid during this callback.
      const result = intake.gps(session.device, new Uint8Array(message), isBinary ? 'protobuf' : 'json', 'ws', this.settle, frame, 0);
      frame.accepted = result.accepted;
      frame.rejected = result.rejected;
      if (result.reason) frame.error = result.reason;
      if (result.stored) {
        session.inFlight++;
        return;
      }
    }
    batcher.addMarker(this.settle, frame, 0); // answered after the frames before it
  }

  private readonly settle = (frame: AckFrame, _tag: number, failedRows: number): void => {
    const session = frame.session;
    if (frame.accepted > 0) session.inFlight--;
    if (session.closed) return;
    const ack: Record<string, unknown> = { type: 'ack', seq: frame.seq, accepted: frame.accepted - failedRows, rejected: frame.rejected };
    if (failedRows > 0) ack.error = 'db_rejected';
    if (frame.error) ack.error = frame.error;
    if (frame.error === 'busy') ack.retry = true;
    const text = JSON.stringify(ack);
    if (session.heldAcks.length > 0 || session.ws.getBufferedAmount() > MAX_BUFFERED_BYTES) {
      session.heldAcks.push(text);
      if (session.heldAcks.length > MAX_HELD_ACKS) session.ws.end(WS_CLOSE_SLOW_READER, 'acks not read');
      return;
    }
    session.ws.cork(() => session.ws.send(text, false));
  };

  private sendHeldAcks(session: WsSession): void {
    let i = 0;
    session.ws.cork(() => {
      while (i < session.heldAcks.length && session.ws.getBufferedAmount() <= MAX_BUFFERED_BYTES) {
        session.ws.send(session.heldAcks[i++]!, false);
      }
    });
    session.heldAcks.splice(0, i);
  }

  stopIntake(): void {
    this.closing = true;
  }

  /** Closes every socket (this uWS build has no app.close()). */
  close(): void {
    this.closing = true;
    for (const session of [...this.sessions]) if (!session.closed) session.ws.end(1001, 'server shutting down');
  }
}
