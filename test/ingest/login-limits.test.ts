import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createDevice, createOrg, type TestOrg } from '../support/factories.js';
import { connectDevice, connectError, metricValue, startIngest, type IngestUnderTest } from './support.js';

const FAILURES_PER_MIN = 5;

let db: TestDatabase;
let sut: IngestUnderTest;
let org: TestOrg;

beforeAll(async () => {
  db = await createTestDatabase();
  sut = await startIngest({ ...db.config, INGEST_AUTH_FAILURES_PER_MIN: FAILURES_PER_MIN });
  org = await createOrg(db.owner);
});

afterAll(async () => {
  await sut?.close();
  await db?.drop();
});

const credentialQueries = () => metricValue(sut.httpBase, 'fieldops_ingest_credential_queries_total', {});
const badLogin = (token: string) => connectError(sut.mqttUrl, { username: '00000000-0000-4000-8000-000000000000', password: token, clientId: 'x', protocolVersion: 4 });

describe('device logins with bad credentials', () => {
  it('answers a repeated unknown token from memory: one database look-up, CONNACK 4 each time', async () => {
    const before = await credentialQueries();
    expect((await badLogin('no-such-token-1')).code).toBe(4);
    const afterFirst = await credentialQueries();
    expect(afterFirst - before).toBe(1);
    for (let i = 0; i < 3; i++) expect((await badLogin('no-such-token-1')).code).toBe(4);
    expect(await credentialQueries()).toBe(afterFirst);
  });

  it('gives a source whose look-ups keep failing no more look-ups for the minute (CONNACK 3); cached devices still log in', async () => {
    const known = await createDevice(db.owner, org.id);
    const first = await connectDevice(sut.mqttUrl, known.id, known.token); // its credentials are now cached
    await first.endAsync();
    const fresh = await createDevice(db.owner, org.id);
    // One failure was spent by the test above; the rest of the budget on new random tokens.
    for (let i = 2; i <= FAILURES_PER_MIN; i++) expect((await badLogin(`random-token-${i}`)).code).toBe(4);
    const queries = await credentialQueries();
    expect((await badLogin('random-token-over-budget')).code).toBe(3);
    expect((await connectError(sut.mqttUrl, { username: fresh.id, password: fresh.token, clientId: fresh.id, protocolVersion: 4 })).code).toBe(3);
    expect(await credentialQueries()).toBe(queries); // refused without a database round trip
    const again = await connectDevice(sut.mqttUrl, known.id, known.token);
    expect(again.connected).toBe(true);
    await again.endAsync();
  });

  it('answers HTTP ingest from such a source 429 in the error shape, without a look-up', async () => {
    const post = (token: string) => fetch(`${sut.httpBase}/v1/ingest/gps`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: '{"fixes":[]}',
    });
    const statuses: number[] = [];
    for (let i = 0; i <= FAILURES_PER_MIN; i++) statuses.push((await post(`http-random-token-${i}`)).status);
    // Its budget may be shared with the MQTT logins above (one address): 401 until it is spent, then 429.
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.every((s, i) => s === 401 || (s === 429 && statuses.slice(i).every((t) => t === 429)))).toBe(true);
    const queries = await credentialQueries();
    const res = await post('http-random-token-over-budget');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('60');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    expect(await credentialQueries()).toBe(queries);
  });
});
