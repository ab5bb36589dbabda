import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApi, login, type TestApi } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { CASES_PER_RUN, FUZZ_CASES, FUZZ_TIMEOUT_MS, fuzzParameters } from './arbitraries.js';
import { expectContractAnswer } from './contract-answers.js';
import { operationsOf, requestFor, type FuzzRequest, type OpenApiDocument } from './openapi-requests.js';

let db: TestDatabase;
let api: TestApi;
let org: TestOrg;
let token: string;
let doc: OpenApiDocument;

beforeAll(async () => {
  db = await createTestDatabase();
  api = await buildTestApi(db.config, { poolSize: 8 });
  org = await createOrg(db.owner, 'unlimited');
  token = await login(api, org);
  doc = (await api.sut.inject({ method: 'GET', url: '/v1/openapi.json' })).json() as OpenApiDocument;
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

/** Ids of a few real objects, so that fuzzed requests also reach existing rows. */
async function someIds(): Promise<string[]> {
  const ids: string[] = [];
  for (const [url, payload] of [['/v1/work-orders', { title: 'seed' }], ['/v1/employees', { name: 'Ada' }], ['/v1/assets', { name: 'Crane' }], ['/v1/clients', { name: 'Acme' }]] as const) {
    const res = await api.sut.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload });
    if (res.statusCode === 201) ids.push(res.json().data.id as string);
  }
  return ids;
}

describe(`REST fuzz: ${FUZZ_CASES} requests generated from the OpenAPI document, every route`, () => {
  it('answers every request with a contract answer (never 5xx), and the valid write sent alongside is kept', async () => {
    const operations = operationsOf(doc);
    expect(operations.length).toBeGreaterThan(40);
    const ids = await someIds();
    const anyRequest = fc.oneof(...operations.map(({ method, path, op }) => requestFor(method, path, op, ids)));
    let n = 0;
    await fc.assert(fc.asyncProperty(fc.array(anyRequest, { minLength: CASES_PER_RUN, maxLength: CASES_PER_RUN }), async (requests) => {
      const title = `valid alongside ${++n}`;
      const send = (r: FuzzRequest) => api.sut.inject({
        method: r.method as 'GET', url: r.url, headers: { ...r.headers, authorization: `Bearer ${token}` }, ...(r.payload !== undefined ? { payload: r.payload } : {}),
      });
      const [valid, ...answers] = await Promise.all([
        api.sut.inject({ method: 'POST', url: '/v1/work-orders', headers: { authorization: `Bearer ${token}` }, payload: { title } }),
        ...requests.map(send),
      ]);
      answers.forEach((res, i) => {
        const r = requests[i]!;
        const json = String(res.headers['content-type'] ?? '').startsWith('application/json');
        expectContractAnswer(res.statusCode, json || res.statusCode >= 400 ? res.body : '{"data":null}', `${r.route}: ${r.method} ${r.url} ${r.payload?.slice(0, 200) ?? ''}`);
      });
      expect(valid!.statusCode, valid!.body).toBe(201);
      const kept = await api.sut.inject({ method: 'GET', url: `/v1/work-orders/${valid!.json().data.id}`, headers: { authorization: `Bearer ${token}` } });
      expect(kept.json().data.title).toBe(title);
    }), fuzzParameters());
  }, FUZZ_TIMEOUT_MS);
});
