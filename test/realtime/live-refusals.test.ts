import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Platform } from '../../services/start.js';
import { newApiKey } from '../../services/shared/secrets.js';
import { startRoles } from '../support/platform.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { apiKey, liveUrl } from './fixtures.js';

/**
 * Bad credentials at the live upgrade cost what they cost in the API (docs/design.md, "Credential look-ups"):
 * past AUTH_FAILURES_PER_MIN failed look-ups from one address, 429 with Retry-After before the database.
 */
const FAILURES_PER_MIN = 3;

let db: TestDatabase;
let platform: Platform;
let port: number;
let org: TestOrg;

beforeAll(async () => {
  db = await createTestDatabase({ AUTH_FAILURES_PER_MIN: String(FAILURES_PER_MIN) });
  platform = await startRoles(db.config, ['realtime']);
  port = platform.realtimePort!;
  org = await createOrg(db.owner, 'unlimited');
});

afterAll(async () => {
  await platform?.close();
  await db?.drop();
});

/** The upgrade's answer: 101 when accepted (the socket is closed again), else the refusal's status, code and Retry-After. */
function upgrade(token: string, localAddress = '127.0.0.1'): Promise<{ status: number; code?: string; retryAfter?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(liveUrl(port, token), { localAddress });
    ws.once('open', () => { ws.close(); resolve({ status: 101 }); });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, code: (JSON.parse(body) as { error: { code: string } }).error.code,
        ...(res.headers['retry-after'] ? { retryAfter: String(res.headers['retry-after']) } : {}),
      }));
    });
    ws.once('error', () => {});
  });
}

describe('live upgrade refusals', () => {
  it('answers 401 up to the limit of failed look-ups from one address, then 429 with Retry-After; other addresses are served', async () => {
    const answers = [];
    for (let i = 0; i < FAILURES_PER_MIN + 4; i++) answers.push(await upgrade(newApiKey(org.id)));
    expect(answers.slice(0, FAILURES_PER_MIN).map((a) => a.status)).toEqual(Array(FAILURES_PER_MIN).fill(401));
    for (const limited of answers.slice(FAILURES_PER_MIN)) {
      expect(limited).toMatchObject({ status: 429, code: 'rate_limited' });
      expect(Number(limited.retryAfter)).toBeGreaterThan(0);
    }
    const valid = await apiKey(db.owner, org);
    expect(await upgrade(valid, '127.0.0.2')).toEqual({ status: 101 });
    expect((await upgrade(newApiKey(org.id), '127.0.0.2')).status).toBe(401);
  });

  it('lets many sockets open at once with one valid key: they share its look-up, and the limit counts none of them', async () => {
    const key = await apiKey(db.owner, org);
    const answers = await Promise.all(Array.from({ length: FAILURES_PER_MIN * 4 }, () => upgrade(key, '127.0.0.4')));
    expect(answers.map((a) => a.status)).toEqual(Array(FAILURES_PER_MIN * 4).fill(101));
  });

  it('answers a refused key from memory: the same bad key over and over stays 401, never 429', async () => {
    const key = newApiKey(org.id);
    for (let i = 0; i < FAILURES_PER_MIN * 3; i++) expect((await upgrade(key, '127.0.0.3')).status).toBe(401);
  });
});
