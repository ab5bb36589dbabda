import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform } from '../../services/start.js';
import { buildTestApi, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startRoles } from '../support/platform.js';

/**
 * `/metrics` can be closed with METRICS_TOKEN on every port that serves it — the API's and the realtime
 * port (ingest and live) — and answers 401 in the error shape to anyone without it
 * (docs/design.md, "Reliability and security").
 */

const METRICS_TOKEN = 'metrics-token-for-the-scraper-0123456789';
let db: TestDatabase;
let api: TestApi;
let platform: Platform;

beforeAll(async () => {
  db = await createTestDatabase({ METRICS_TOKEN });
  api = await buildTestApi(db.config);
  platform = await startRoles(db.config, ['ingest', 'realtime']);
});

afterAll(async () => {
  await api?.close();
  await platform?.close();
  await db?.drop();
});

const refusals: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token' }, { authorization: `Basic ${Buffer.from(`x:${METRICS_TOKEN}`).toString('base64')}` },
  { authorization: `Bearer ${METRICS_TOKEN}x` }];

describe('/metrics with METRICS_TOKEN set', () => {
  it('on the API port: 401 in the error shape without the token, the metrics with it', async () => {
    for (const headers of refusals) {
      const res = await api.sut.inject({ method: 'GET', url: '/metrics', headers });
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toMatchObject({ code: 'unauthorized', issues: [] });
      expect(res.body).not.toContain('process_cpu');
    }
    const res = await api.sut.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('http_request_duration_seconds');
  });

  it('on the realtime port: the same', async () => {
    const url = `http://127.0.0.1:${platform.realtimePort}/metrics`;
    for (const headers of refusals) {
      const res = await fetch(url, { headers });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    }
    const res = await fetch(url, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('fieldops_ingest_messages_total');
    expect(text).toContain('fieldops_realtime_');
  });
});
