import type uWS from 'uWebSockets.js';
import { credentialOf } from './contracts/credentials.js';
import { errorBody, errorHeaders, newRequestId, REQUEST_ID_HEADER, type ApiError } from './contracts/errors.js';

/**
 * HTTP helpers for the realtime port (uWebSockets.js), where Fastify's error handler does not run: the
 * credential of a request and the error set's answers, the same as the API's (services/shared/contracts).
 */

/** `Authorization: Bearer <credential>` or `?token=`; '' when neither is there. */
export function bearerToken(req: uWS.HttpRequest): string {
  return credentialOf(req.getHeader('authorization'), req.getQuery('token'));
}

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK', 400: '400 Bad Request', 401: '401 Unauthorized', 402: '402 Payment Required', 403: '403 Forbidden',
  404: '404 Not Found', 409: '409 Conflict', 413: '413 Payload Too Large', 429: '429 Too Many Requests',
  500: '500 Internal Server Error', 503: '503 Service Unavailable',
};

/** Writes a JSON response; call inside `res.cork` when not in the handler's synchronous part. */
export function sendJson(res: uWS.HttpResponse, status: number, body: string, headers: Record<string, string> = {}, closeConnection = false): void {
  res.writeStatus(STATUS_TEXT[status] ?? `${status} Error`);
  res.writeHeader('content-type', 'application/json; charset=utf-8');
  for (const [key, value] of Object.entries(headers)) res.writeHeader(key, value);
  res.end(body, closeConnection);
}

export interface ErrorReplyOptions {
  /** The request's id when it has one already; a new one otherwise. */
  requestId?: string;
  headers?: Record<string, string>;
  closeConnection?: boolean;
}

/** Answers with an error of the error set: its status, the body, the request id header (and `WWW-Authenticate` on 401). */
export function sendError(res: uWS.HttpResponse, err: ApiError, options: ErrorReplyOptions = {}): void {
  const requestId = options.requestId ?? newRequestId();
  const headers = { [REQUEST_ID_HEADER]: requestId, ...errorHeaders(err), ...options.headers };
  sendJson(res, err.statusCode, JSON.stringify(errorBody(err, requestId)), headers, options.closeConnection);
}
