import fc from 'fast-check';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGpsBatch } from '../../ingest/proto.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createDevice, createOrg, type TestDevice } from '../support/factories.js';
import { startIngest, type IngestUnderTest } from '../ingest/support.js';
import { anyPayload, anyText, CASES_PER_RUN, FixClock, FUZZ_CASES, FUZZ_TIMEOUT_MS, fuzzParameters, validFix } from './arbitraries.js';
import { expectContractAnswer } from './contract-answers.js';

let db: TestDatabase;
let sut: IngestUnderTest;
let device: TestDevice;
const clock = new FixClock();

beforeAll(async () => {
  db = await createTestDatabase();
  sut = await startIngest(db.config);
  device = await createDevice(db.owner, (await createOrg(db.owner)).id);
});

afterAll(async () => {
  await sut?.close();
  await db?.drop();
});

async function storedOf(tsList: number[]): Promise<number> {
  const { rows } = await db.owner.query<{ n: number }>(
    'select count(*)::int as n from positions where device_id = $1 and ts = any($2::timestamptz[])', [device.id, tsList.map((t) => new Date(t).toISOString())]);
  return rows[0]!.n;
}

/** A valid batch of 1 to 500 fixes, in either encoding, and the times of its fixes. */
const validBatch = fc.record({ fixes: fc.integer({ min: 1, max: 500 }), json: fc.boolean() }).map(({ fixes, json }) => ({ fixes, json }));
const encodeValid = (times: number[], json: boolean) =>
  json ? Buffer.from(JSON.stringify({ fixes: times.map(validFix) })) : Buffer.from(encodeGpsBatch({ fixes: times.map(validFix) }));

const CONTENT_TYPES = ['application/json', 'application/x-protobuf', 'application/octet-stream', 'application/protobuf', 'application/json; charset=utf-8'];

describe(`HTTP ingest fuzz: ${FUZZ_CASES} random POST /v1/ingest/gps requests`, () => {
  it('answers each with 200 or a contract error (503 only to retry), and stores the valid batch sent alongside', async () => {
    const request = fc.record({
      body: anyPayload,
      contentType: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...CONTENT_TYPES) }, { weight: 1, arbitrary: anyText(30) }),
      token: fc.oneof({ weight: 6, arbitrary: fc.constant('valid') }, { weight: 1, arbitrary: anyText(80) }),
      tokenIn: fc.constantFrom('header', 'query'),
    });
    await fc.assert(fc.asyncProperty(fc.array(request, { minLength: CASES_PER_RUN, maxLength: CASES_PER_RUN }), validBatch, async (requests, valid) => {
      const post = async (body: Buffer, contentType: string, token: string, tokenIn: string) => {
        const headers: Record<string, string> = {};
        // fetch refuses header values that are not Latin-1 bytes: such a client never reaches the server.
        if (/^[\t\x20-\x7e\x80-\xff]*$/.test(contentType)) headers['content-type'] = contentType;
        const query = tokenIn === 'query' ? `?token=${encodeURIComponent(token)}` : '';
        if (tokenIn === 'header' && /^[\t\x20-\x7e\x80-\xff]*$/.test(token)) headers.authorization = `Bearer ${token}`;
        const res = await fetch(`${sut.httpBase}/v1/ingest/gps${query}`, { method: 'POST', headers, body: new Uint8Array(body) });
        return { status: res.status, text: await res.text() };
      };
      const times = clock.take(valid.fixes);
      const answers = await Promise.all([
        post(encodeValid(times, valid.json), valid.json ? 'application/json' : 'application/x-protobuf', device.token, 'header'),
        ...requests.map((r) => post(r.body, r.contentType, r.token === 'valid' ? device.token : r.token, r.tokenIn)),
      ]);
      expect(answers[0]!.status, answers[0]!.text).toBe(200);
      answers.forEach((a, i) => expectContractAnswer(a.status, a.text, `request ${i}`, { unavailableOk: true }));
      expect(await storedOf(times)).toBe(valid.fixes);
    }), fuzzParameters());
  }, FUZZ_TIMEOUT_MS);
});

/** A device's ingest socket whose acks are kept in order. */
async function ingestSocket(): Promise<{ ws: WebSocket; acks: Record<string, unknown>[]; closed: Promise<number> }> {
  const ws = new WebSocket(`${sut.wsUrl}?token=${encodeURIComponent(device.token)}`);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const acks: Record<string, unknown>[] = [];
  ws.on('message', (data) => acks.push(JSON.parse(String(data)) as Record<string, unknown>));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return { ws, acks, closed };
}

const FRAME_ERRORS = ['undecodable', 'empty_batch', 'batch_too_large', 'busy'];

describe(`WebSocket ingest fuzz: ${FUZZ_CASES} random frames on /v1/ingest`, () => {
  it('acks every frame in order with accepted/rejected counts, keeps the socket, and stores the valid batch sent alongside', async () => {
    let socket = await ingestSocket();
    const frame = fc.record({ payload: anyPayload, binary: fc.boolean() });
    await fc.assert(fc.asyncProperty(fc.array(frame, { minLength: CASES_PER_RUN, maxLength: CASES_PER_RUN }), validBatch, async (frames, valid) => {
      if (socket.ws.readyState !== WebSocket.OPEN) socket = await ingestSocket();
      const first = socket.acks.length;
      const times = clock.take(valid.fixes);
      // A text frame must be UTF-8 (RFC 6455 section 8.1: anything else ends the connection, 1007): decoded as such.
      for (const f of frames) socket.ws.send(f.binary ? f.payload : f.payload.toString('utf8'), { binary: f.binary });
      socket.ws.send(encodeValid(times, valid.json), { binary: !valid.json });
      const deadline = Date.now() + 10_000;
      while (socket.acks.length < first + frames.length + 1 && Date.now() < deadline && socket.ws.readyState === WebSocket.OPEN) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(socket.ws.readyState, `the socket stays open (closed: ${await Promise.race([socket.closed, Promise.resolve('no')])})`).toBe(WebSocket.OPEN);
      const acks = socket.acks.slice(first);
      expect(acks).toHaveLength(frames.length + 1);
      const seq0 = acks[0]!.seq as number;
      acks.forEach((ack, i) => {
        expect(ack, JSON.stringify(ack)).toMatchObject({ type: 'ack', seq: seq0 + i, accepted: expect.any(Number), rejected: expect.any(Array) });
        if (ack.error !== undefined) expect(FRAME_ERRORS, JSON.stringify(ack)).toContain(ack.error);
      });
      expect(acks.at(-1), 'the valid frame').toMatchObject({ accepted: valid.fixes, rejected: [] });
      expect(await storedOf(times)).toBe(valid.fixes);
    }), fuzzParameters());
    socket.ws.close();
  }, FUZZ_TIMEOUT_MS);
});
