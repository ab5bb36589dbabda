import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGpsBatch } from '../../ingest/proto.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createDevice, createOrg, type TestDevice } from '../support/factories.js';
import { closed, connectDevice, startIngest, type IngestUnderTest } from '../ingest/support.js';
import { within } from '../support/wait.js';
import { anyPayload, anyText, CASES_PER_RUN, FixClock, FUZZ_CASES, FUZZ_TIMEOUT_MS, fuzzParameters, validFix } from './arbitraries.js';

let db: TestDatabase;
let sut: IngestUnderTest;
let device: TestDevice;
let client: MqttClient;
const clock = new FixClock();

const connect = () => connectDevice(sut.mqttUrl, device.id, device.token, { clientId: device.id });

beforeAll(async () => {
  db = await createTestDatabase();
  sut = await startIngest(db.config);
  device = await createDevice(db.owner, (await createOrg(db.owner)).id);
  client = await connect();
});

afterAll(async () => {
  await client?.endAsync(true);
  await sut?.close();
  await db?.drop();
});

const TELEMETRY = ['gps', 'gps/json', 'punch', 'punch/json'] as const;
const RAW_PACKET_ID = 65_000;

/** A QoS 1 PUBLISH packet (MQTT 3.1.1 section 3.3) with the topic as the given bytes, whatever they are. */
function rawPublish(topic: Buffer, payload: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, Buffer.from([RAW_PACKET_ID >> 8, RAW_PACKET_ID & 0xff]), payload]);
  const length: number[] = [];
  let n = body.length;
  do {
    length.push((n % 128) | (n >= 128 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x32, ...length]), body]);
}

async function storedOf(tsList: number[]): Promise<number> {
  const { rows } = await db.owner.query<{ n: number }>(
    'select count(*)::int as n from positions where device_id = $1 and ts = any($2::timestamptz[])', [device.id, tsList.map((t) => new Date(t).toISOString())]);
  return rows[0]!.n;
}

describe(`MQTT fuzz: ${FUZZ_CASES} random payloads on the telemetry topics, and random topics`, () => {
  it('acknowledges every message on its own topics, keeps the connection, stores the valid batch sent alongside; a foreign topic only ends that connection', async () => {
    const run = fc.record({
      cases: fc.array(fc.record({ topic: fc.constantFrom(...TELEMETRY), payload: anyPayload }), { minLength: CASES_PER_RUN, maxLength: CASES_PER_RUN }),
      // Valid data alongside: a batch of 1 to 500 fixes, in either encoding (DESIGN: the limit is 500 fixes, whatever the encoding).
      validFixes: fc.integer({ min: 1, max: 500 }),
      validJson: fc.boolean(),
      foreignTopic: fc.option(fc.oneof(
        anyText(60).map((t) => Buffer.from(t)),
        fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b)),
        fc.oneof(anyText(20), fc.uuid()).map((t) => Buffer.from(`fieldops/${t}/gps`)),
        fc.constantFrom('fieldops/+/gps', '#', '', '\u0000').map((t) => Buffer.from(t)),
      ), { freq: 5 }),
    });
    await fc.assert(fc.asyncProperty(run, async ({ cases, validFixes, validJson, foreignTopic }) => {
      if (!client.connected) client = await connect();
      const times = clock.take(validFixes);
      const fixes = times.map(validFix);
      const topic = `fieldops/${device.id}/${validJson ? 'gps/json' : 'gps'}`;
      const payload = validJson ? Buffer.from(JSON.stringify({ fixes })) : Buffer.from(encodeGpsBatch({ fixes }));
      // DESIGN 4: a batch is limited in fixes (500) whatever the encoding, and a packet over MQTT_MAX_PACKET_BYTES
      // ends the connection. 500 full-precision JSON fixes (≈ 124 KB) are over the 64 KiB default: such a batch
      // must end the connection with nothing of it stored; every batch within the limit must be stored whole.
      const fits = rawPublish(Buffer.from(topic), payload).length <= db.config.MQTT_MAX_PACKET_BYTES;
      const valid = fits ? client.publishAsync(topic, payload, { qos: 1 }) : Promise.resolve();
      const answers = cases.map(({ topic: kind, payload: bytes }) => client.publishAsync(`fieldops/${device.id}/${kind}`, bytes, { qos: 1 }));
      await within(10_000, 'a PUBACK for every message', Promise.all([valid, ...answers]));
      expect(client.connected).toBe(true);
      if (fits) expect(await storedOf(times)).toBe(validFixes);
      else {
        const gone = closed(client);
        void client.publishAsync(topic, payload, { qos: 1 }).catch(() => {});
        await within(5_000, `the connection to end after a ${payload.length}-byte packet`, gone);
        expect(await storedOf(times)).toBe(0);
        client.end(true);
        return;
      }

      if (foreignTopic !== null && !TELEMETRY.some((t) => foreignTopic.equals(Buffer.from(`fieldops/${device.id}/${t}`)))) {
        // Written as raw bytes on the connection (a hostile client need not use a client library that checks topics).
        const gone = closed(client).then(() => 'closed');
        const acked = new Promise<string>((resolve) => client.on('packetreceive', (packet) => {
          if (packet.cmd === 'puback' && packet.messageId === RAW_PACKET_ID) resolve('acknowledged');
        }));
        (client.stream as unknown as { write(b: Buffer): void }).write(rawPublish(foreignTopic, Buffer.from('x')));
        const outcome = await within(5_000, `an answer to a publish on ${JSON.stringify(foreignTopic.toString())}`, Promise.race([gone, acked]));
        expect(outcome, `publish on ${JSON.stringify(foreignTopic.toString())}`).toBe('closed');
      }
    }), fuzzParameters());
  }, FUZZ_TIMEOUT_MS);
});
