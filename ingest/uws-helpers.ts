import type uWS from 'uWebSockets.js';

/** The device token of an ingest request: `Authorization: Bearer <token>` or `?token=` (DESIGN section 4). */
export function deviceToken(req: uWS.HttpRequest): string {
  const header = req.getHeader('authorization');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match) return match[1]!;
  return req.getQuery('token') ?? '';
}

export interface ErrorIssue {
  path: string;
  message: string;
}

/** The error shape of DESIGN section 6, shared by the ingest HTTP endpoints. */
export function errorBody(code: string, message: string, requestId: string, issues: ErrorIssue[] = []): string {
  return JSON.stringify({ error: { code, message, request_id: requestId, issues } });
}

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK', 400: '400 Bad Request', 401: '401 Unauthorized', 413: '413 Payload Too Large', 503: '503 Service Unavailable',
};

/** Writes a JSON response; call inside `res.cork` when not in the handler's synchronous part. */
export function sendJson(res: uWS.HttpResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeStatus(STATUS_TEXT[status] ?? `${status} Error`);
  res.writeHeader('content-type', 'application/json; charset=utf-8');
  for (const [key, value] of Object.entries(headers)) res.writeHeader(key, value);
  res.end(body);
}
