import type uWS from 'uWebSockets.js';

/**
 * HTTP helpers for the realtime port (uWebSockets.js), where Fastify's error handler does not run:
 * the credentials of a request and the error shape of DESIGN section 6.
 */

/** `Authorization: Bearer <token>` or `?token=` (DESIGN sections 4 and 5); '' when neither is there. */
export function bearerToken(req: uWS.HttpRequest): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.getHeader('authorization'));
  if (match) return match[1]!;
  return req.getQuery('token') ?? '';
}

export interface ErrorIssue {
  path: string;
  message: string;
}

export function errorBody(code: string, message: string, requestId: string, issues: ErrorIssue[] = []): string {
  return JSON.stringify({ error: { code, message, request_id: requestId, issues } });
}

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK', 400: '400 Bad Request', 401: '401 Unauthorized', 402: '402 Payment Required', 403: '403 Forbidden',
  413: '413 Payload Too Large', 500: '500 Internal Server Error', 503: '503 Service Unavailable',
};

/** Writes a JSON response; call inside `res.cork` when not in the handler's synchronous part. */
export function sendJson(res: uWS.HttpResponse, status: number, body: string, headers: Record<string, string> = {}, closeConnection = false): void {
  res.writeStatus(STATUS_TEXT[status] ?? `${status} Error`);
  res.writeHeader('content-type', 'application/json; charset=utf-8');
  for (const [key, value] of Object.entries(headers)) res.writeHeader(key, value);
  res.end(body, closeConnection);
}
