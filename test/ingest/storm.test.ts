import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { seedBenchTenant, type BenchTenant } from '../../bench/lib/bench-env.js';
import { reconnectStormInChild } from '../../bench/lib/mqtt-storm.js';
import { metricValue, startIngest, type IngestUnderTest } from './support.js';

const DEVICES = 500;

let db: TestDatabase;
let sut: IngestUnderTest;
let tenant: BenchTenant;

beforeAll(async () => {
  db = await createTestDatabase();
  sut = await startIngest(db.config);
  tenant = await seedBenchTenant(db.owner, DEVICES);
});

afterAll(async () => {
  await sut?.close();
  await db?.drop();
});

const credentialQueries = () => metricValue(sut.httpBase, 'fieldops_ingest_credential_queries_total', {});

describe('devices connecting all at once', () => {
  // Timed at 2,000 devices in test/drills/storm.test.ts (alone, so that the clock means something), at 10,000 by
  // `npm run bench -- storm`.
  it(`admits ${DEVICES} of them and commits each one's first fix, their logins sharing credential queries`, async () => {
    const { port } = new URL(sut.mqttUrl);
    const queriesBefore = await credentialQueries();
    const result = await reconnectStormInChild({ host: '127.0.0.1', port: Number(port), devices: tenant.devices, tsMs: Date.now() - 1000, timeoutMs: 30_000 });
    expect(result).toMatchObject({ devices: DEVICES, admitted: DEVICES, publishing: DEVICES, refused: {}, failed: 0 });
    const { rows } = await db.owner.query<{ n: string }>('select count(*) as n from positions where tenant_id = $1', [tenant.tenantId]);
    expect(Number(rows[0]!.n)).toBe(DEVICES);
    // Many CONNECTs, one query: a query each took ≈ 29 s for 10,000 devices.
    const queries = (await credentialQueries()) - queriesBefore;
    expect(queries).toBeGreaterThan(0);
    expect(queries).toBeLessThan(DEVICES);
  }, 90_000);
});
