import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import { urlHost, type ResolvedAddress } from '../shared/webhook-targets.js';

/** What one POST came to: an answer (status, its first bytes, Retry-After) or an error without one. */
export interface SendResult {
  statusCode: number | null;
  /** The first bytes of the answer's body, as text. */
  excerpt: string | null;
  /** Retry-After in seconds (a 429's or a 503's), when the answer carried one that parses. */
  retryAfterS: number | null;
  error: string | null;
  durationMs: number;
}

export interface SendRequest {
  url: URL;
  /** The address the target check accepted: the connection goes there and nowhere else. */
  address: ResolvedAddress;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
}

const EXCERPT_BYTES = 1024;
/** An answer body past this is not read on: the connection is dropped instead of kept alive. */
const MAX_DRAIN_BYTES = 64 * 1024;

/**
 * Sends one webhook POST (docs/design.md, "Webhooks"): to the pinned address (the `lookup` of the
 * connection answers only it, so a name cannot be re-resolved elsewhere between check and connect),
 * with the URL's host as Host and TLS name, no redirect followed (Node's client follows none), and one
 * deadline over connect, send and answer. Connections are kept alive per origin.
 */
export function createHttpSender() {
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' }),
  };

  const send = (request: SendRequest): Promise<SendResult> => new Promise((resolve) => {
    const started = performance.now();
    const { url, address } = request;
    const https_ = url.protocol === 'https:';
    const pinned: LookupFunction = (_hostname, options, callback) => {
      if (options.all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: address.address, family: address.family }]);
      else callback(null, address.address, address.family);
    };
    let settled = false;
    const finish = (result: Omit<SendResult, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      resolve({ ...result, durationMs: Math.round(performance.now() - started) });
    };
    const host = urlHost(url);
    const req = (https_ ? https : http).request({
      protocol: url.protocol,
      hostname: host,
      port: url.port || (https_ ? 443 : 80),
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      agent: agents[https_ ? 'https:' : 'http:'],
      lookup: pinned,
      ...(https_ && !isIP(host) ? { servername: host } : {}),
      headers: { ...request.headers, 'content-length': Buffer.byteLength(request.body) },
    }, (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      let seen = 0;
      res.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (kept < EXCERPT_BYTES) {
          chunks.push(chunk.subarray(0, EXCERPT_BYTES - kept));
          kept += Math.min(chunk.length, EXCERPT_BYTES - kept);
        }
        if (seen > MAX_DRAIN_BYTES) res.destroy();
      });
      const done = () => finish({
        statusCode: res.statusCode ?? null,
        excerpt: kept ? Buffer.concat(chunks).toString('utf8') : null,
        retryAfterS: parseRetryAfter(res.headers['retry-after']),
        error: null,
      });
      res.on('end', done);
      res.on('close', done);
      res.on('error', done);
    });
    const deadline = setTimeout(() => {
      finish({ statusCode: null, excerpt: null, retryAfterS: null, error: `timeout after ${request.timeoutMs} ms` });
      req.destroy();
    }, request.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => finish({ statusCode: null, excerpt: null, retryAfterS: null, error: err.code ?? err.message }));
    req.end(request.body);
  });

  return {
    send,
    close(): void {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}

export type HttpSender = ReturnType<typeof createHttpSender>;

/** `Retry-After: 120` or an HTTP date, as seconds from now; null when absent or unreadable. */
export function parseRetryAfter(header: string | string[] | undefined, nowMs = Date.now()): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - nowMs) / 1000));
}
