import { randomUUID } from 'node:crypto';

/**
 * The error set of every HTTP answer the platform gives — the Fastify API and the uWebSockets.js endpoints
 * (ingest, live upgrade) alike (docs/design.md, "Errors and credentials"):
 * `{"error":{"code","message","request_id","issues":[{"path","message"}]}}` with the status of its code.
 */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  payment_required: 402,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  rate_limited: 429,
  internal: 500,
  /** The database or the stream is unavailable or overloaded (a statement timeout, a backlog bound): retry. */
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

const CODE_BY_STATUS = new Map<number, ErrorCode>(Object.entries(ERROR_STATUS).map(([code, status]) => [status, code as ErrorCode]));

/** The code of an HTTP status that is not ours (a framework's 4xx); `bad_request` for a 4xx without one. */
export const codeOfStatus = (status: number): ErrorCode => CODE_BY_STATUS.get(status) ?? (status >= 500 ? 'internal' : 'bad_request');

/** One problem with one field of the request. */
export interface Issue {
  /** The field, dotted (`email`, `items.0.quantity`). */
  path: string;
  message: string;
}

/**
 * An error a client is meant to see: its code, message and issues reach the response as they are.
 * Throw it from handlers and repositories; the error handlers map everything else. `statusCode` is the
 * code's status unless a transport has a more precise one (413 for a body too large is still `bad_request`).
 */
export class ApiError extends Error {
  readonly statusCode: number;
  /** For `rate_limited`: seconds until a retry can succeed, sent as `Retry-After`. */
  retryAfterS?: number;

  constructor(readonly code: ErrorCode, message: string, readonly issues: Issue[] = [], statusCode: number = ERROR_STATUS[code]) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = statusCode;
  }
}

export const badRequest = (message: string, issues: Issue[] = []) => new ApiError('bad_request', message, issues);
/** A field that points at something that does not exist for this tenant (a 400 naming the field). */
export const badReference = (path: string, what: string) =>
  badRequest(`${path} does not name an existing ${what}`, [{ path, message: `no ${what} with this id` }]);
export const unauthorized = (message = 'a valid bearer token or API key is required') => new ApiError('unauthorized', message);
export const paymentRequired = (message = 'API access needs the unlimited plan or the api add-on') => new ApiError('payment_required', message);
export const forbidden = (message: string) => new ApiError('forbidden', message);
/** Missing and another tenant's objects get the same answer. */
export const notFound = (what: string) => new ApiError('not_found', `${what} not found`);
export const conflict = (message: string, issues: Issue[] = []) => new ApiError('conflict', message, issues);
export function rateLimited(message: string, retryAfterS?: number): ApiError {
  const err = new ApiError('rate_limited', message);
  if (retryAfterS !== undefined) err.retryAfterS = retryAfterS;
  return err;
}
export const unavailable = (message: string) => new ApiError('unavailable', message);
/** What a client sees of any failure of ours: no cause, only the request id to quote. */
export const internalError = () => new ApiError('internal', 'internal error');

export interface ErrorBody {
  error: { code: ErrorCode; message: string; request_id: string; issues: Issue[] };
}

export function errorBody(err: ApiError, requestId: string): ErrorBody {
  return { error: { code: err.code, message: err.message, request_id: requestId, issues: err.issues } };
}

/** Headers every error answer carries besides the request id: a 401 names the scheme (RFC 6750), a 429 when to retry. */
export function errorHeaders(err: ApiError): Record<string, string> {
  if (err.statusCode === 401) return { 'www-authenticate': 'Bearer' };
  return err.retryAfterS !== undefined ? { 'retry-after': String(err.retryAfterS) } : {};
}

/** The response header that carries the request id, on every answer (errors included). */
export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * `req_` + 32 hex characters, made by the server for every request. A client's own `X-Request-Id` is not
 * taken: two requests could then share an id, and a log line could be attributed to the wrong one.
 */
export const newRequestId = (): string => `req_${randomUUID().replaceAll('-', '')}`;
