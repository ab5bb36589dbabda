import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform } from '../../services/start.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';
import { startRoles } from '../support/platform.js';
import { LiveClient } from '../realtime/live-client.js';
import { liveUrl, position, sessionToken, StreamWriter, uuidFor } from '../realtime/fixtures.js';
import { anyFieldValue, anyText, CASES_PER_RUN, FUZZ_CASES, FUZZ_TIMEOUT_MS, fuzzParameters } from './arbitraries.js';

let db: TestDatabase;
let platform: Platform;
let org: TestOrg;
let writer: StreamWriter;
let token: string;

beforeAll(async () => {
  db = await createTestDatabase();
  platform = await startRoles(db.config, ['realtime']);
  org = await createOrg(db.owner);
  writer = new StreamWriter(db.config);
  token = await sessionToken(db.config, db.owner, org);
});

afterAll(async () => {
  await writer?.close();
  await platform?.close();
  await db?.drop();
});

/** Messages a dispatcher's client might send: near-requests with each field right or wrong, any JSON, any text, any bytes. */
const anyLiveMessage: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.record({
    type: fc.oneof(fc.constantFrom('subscribe', 'unsubscribe'), anyFieldValue),
    channels: fc.oneof(fc.subarray(['positions', 'events']), fc.array(fc.oneof(fc.constantFrom('positions', 'events'), anyText(12)), { maxLength: 4 }), anyFieldValue),
    assets: fc.oneof(fc.array(fc.oneof(fc.uuid(), anyText(120), anyFieldValue), { maxLength: 5 }), anyFieldValue),
    bbox: fc.oneof(fc.array(fc.double(), { minLength: 4, maxLength: 4 }), fc.array(anyFieldValue, { maxLength: 5 }), anyFieldValue),
    since: fc.oneof(fc.constantFrom('0-0', '1700000000000-0', '99999999999999999999-0', '-1-1', '1-', '$', '+'), anyText(30), anyFieldValue),
  }, { requiredKeys: [] }).map((m) => JSON.stringify(m)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
  anyText(200),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
);

describe(`live socket fuzz: ${FUZZ_CASES} random messages on /v1/live`, () => {
  it('answers each with nothing or a bad_request error message, keeps the socket, and still delivers after a valid subscribe', async () => {
    let client = await LiveClient.connect(liveUrl(platform.realtimePort!, token));
    let n = 0;
    await fc.assert(fc.asyncProperty(fc.array(anyLiveMessage, { minLength: CASES_PER_RUN, maxLength: CASES_PER_RUN }), async (messages) => {
      if (client.ws.readyState !== client.ws.OPEN) client = await LiveClient.connect(liveUrl(platform.realtimePort!, token));
      const first = client.received.length;
      for (const m of messages) client.send(m);
      // Filters the fuzz may have set are replaced by a plain subscription; frames are handled in order.
      await client.request({ type: 'unsubscribe', channels: ['positions', 'events'] });
      await client.request({ type: 'subscribe', channels: ['positions', 'events'] });
      expect(client.ws.readyState, 'the socket stays open').toBe(client.ws.OPEN);
      const answers = client.received.slice(first);
      for (const answer of answers.filter((a) => a.type === 'error')) {
        expect(answer, JSON.stringify(answer)).toMatchObject({ type: 'error', error: { code: 'bad_request', message: expect.any(String) } });
      }
      expect(answers.every((a) => a.type === 'error' || a.type === 'event' || a.type === 'position'), JSON.stringify(answers.slice(0, 3))).toBe(true);
      const asset = uuidFor(`fuzz-asset-${++n}`);
      await writer.positions([position(org.id, uuidFor(`fuzz-device-${n}`), asset, 45, 7)]);
      await client.next((m) => m.type === 'position' && m.asset_id === asset, 'the position written after the fuzz');
    }), fuzzParameters());
    client.close();
  }, FUZZ_TIMEOUT_MS);
});
