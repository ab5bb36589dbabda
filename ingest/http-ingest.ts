import type uWS from 'uWebSockets.js';
import type { Batcher } from './batcher.js';
import type { FixRejection, PayloadFormat, RejectReason } from './decode.js';
import type { DeviceAuthenticator } from './devices.js';
import type { IngestIntake } from './intake.js';
import { ApiError, badRequest, newRequestId, rateLimited, unauthorized, unavailable, type Issue } from '../services/shared/contracts/errors.js';
import { bearerToken, sendError, sendJson } from '../services/shared/uws-http.js';

export interface HttpIngestOptions {
  app: uWS.TemplatedApp;
  directory: DeviceAuthenticator;
  batcher: Batcher;
  intake: IngestIntake;
  maxBodyBytes: number;
}

interface PendingRequest {
  res: uWS.HttpResponse;
  aborted: boolean;
  accepted: number;
  rejected: FixRejection[];
}

const RETRY_SOON = { 'retry-after': '1' };
const RETRY_LATER = { 'retry-after': '60' };

const REASON_TEXT: Record<RejectReason, string> = {
  undecodable: 'the body is not a GpsBatch',
  empty_batch: 'the batch holds no fix',
  batch_too_large: 'the batch holds more fixes than allowed',
  invalid_lat: 'lat must be a number between -90 and 90',
  invalid_lon: 'lon must be a number between -180 and 180',
  invalid_ts: 'ts_ms must be a positive Unix time in milliseconds',
  ts_in_future: 'ts_ms is more than 10 minutes ahead of the server clock',
  ts_too_old: 'ts_ms is older than the retention of the data',
  missing_employee_id: 'employee_id is required',
  invalid_kind: 'kind must be "in" or "out"',
  unauthorized_topic: 'not allowed',
  packet_too_large: 'the packet is larger than allowed',
  db_rejected: 'the database refused the row',
};

/**
 * `POST /v1/ingest/gps` (docs/design.md, "Device contract"): a protobuf or JSON GpsBatch with the device token, answered 200 after
 * the commit with `{"data":{"accepted":k,"rejected":[{"index","reason"}]}}`; 400 in the error shape when nothing
 * in it can be stored, 401 for a bad token, 503 (Retry-After) while ingest is at its backlog bound.
 */
export class HttpIngest {
  private closing = false;

  constructor(private readonly options: HttpIngestOptions) {}

  register(): void {
    const { app } = this.options;
    app.post('/v1/ingest/gps', (res, req) => this.onPost(res, req));
  }

  private onPost(res: uWS.HttpResponse, req: uWS.HttpRequest): void {
    const token = bearerToken(req);
    const source = Buffer.from(res.getRemoteAddressAsText()).toString();
    const contentType = req.getHeader('content-type').toLowerCase();
    const requestId = newRequestId();
    const pending: PendingRequest = { res, aborted: false, accepted: 0, rejected: [] };
    res.onAborted(() => { pending.aborted = true; });
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      size += chunk.byteLength;
      if (size <= this.options.maxBodyBytes) chunks.push(Buffer.from(chunk.slice(0))); // uWS reuses the chunk's memory
      if (isLast) void this.handle(pending, token, source, contentType, requestId, size, Buffer.concat(chunks));
    });
  }

  private async handle(pending: PendingRequest, token: string, source: string, contentType: string, requestId: string, size: number,
    body: Buffer): Promise<void> {
    const auth = await this.options.directory.authenticate(token, source);
    const refuse = (err: ApiError, headers?: Record<string, string>) => {
      if (!pending.aborted) pending.res.cork(() => sendError(pending.res, err, { requestId, headers }));
    };
    if (!auth.ok) {
      if (auth.reason === 'unavailable') return refuse(unavailable('device registry unavailable'), RETRY_SOON);
      if (auth.reason === 'rate_limited') return refuse(rateLimited('too many failed device logins from this address'), RETRY_LATER);
      return refuse(unauthorized('missing or invalid device token'));
    }
    if (size > this.options.maxBodyBytes) return refuse(new ApiError('bad_request', 'body too large', [], 413));
    const format = payloadFormat(contentType);
    if (!format) {
      return refuse(badRequest('Content-Type must be application/x-protobuf, application/octet-stream or application/json',
        [{ path: 'content-type', message: 'unsupported content type' }]));
    }
    if (this.closing || this.options.batcher.underPressure) {
      return refuse(unavailable('ingest is at its backlog bound; retry shortly'), RETRY_SOON);
    }
    const result = this.options.intake.gps(auth.device, body, format, 'http', this.settle, pending, 0);
    if (result.stored) {
      pending.accepted = result.accepted;
      pending.rejected = result.rejected;
      return;
    }
    const issues: Issue[] = result.reason
      ? [{ path: 'body', message: REASON_TEXT[result.reason] }]
      : result.rejected.map((r) => ({ path: `fixes[${r.index}]`, message: `${r.reason}: ${REASON_TEXT[r.reason]}` }));
    refuse(badRequest(result.reason ? REASON_TEXT[result.reason] : 'no fix in the batch is valid', issues));
  }

  private readonly settle = (pending: PendingRequest, _tag: number, failedRows: number): void => {
    if (pending.aborted) return;
    const body = JSON.stringify({ data: { accepted: pending.accepted - failedRows, rejected: pending.rejected } });
    pending.res.cork(() => sendJson(pending.res, 200, body));
  };

  stopIntake(): void {
    this.closing = true;
  }
}

function payloadFormat(contentType: string): PayloadFormat | null {
  const type = contentType.split(';')[0]!.trim();
  if (type === 'application/x-protobuf' || type === 'application/octet-stream' || type === 'application/protobuf') return 'protobuf';
  if (type === 'application/json') return 'json';
  return null;
}
