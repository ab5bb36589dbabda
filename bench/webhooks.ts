/**
 * `npm run bench -- webhooks [--seconds 5] [--rate 5000] [--backlog 30000] [--endpoints 4] [--concurrency 64]`
 *
 * The webhooks role (`fieldops start --role webhooks`, its own process) delivering to a bare receiver
 * (its own process) on a fresh bench database, against a baseline: a bare loop POSTing envelopes to the
 * same receiver over keep-alive connections, as many in flight as the role may have (`--concurrency`).
 * Phases, in one run:
 *   1. baseline — the bare loop for `--seconds`: requests/s.
 *   2. drain — `--backlog` events written at once (one outbox insert per 1,000, each routed to every
 *      endpoint), then the role started: deliveries/s from the first arrival to the last.
 *   3. latency — events written at `--rate` deliveries/s for `--seconds` (every 10 ms a batch, through the
 *      outbox insert every producer uses) to a running role: event→delivery latency p50/p99 at the
 *      receiver (from the envelope's `occurred_at`), and whether every delivery arrived.
 * Events spread over many assets (per-key order holds per asset). Results go to bench/results/.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createServicePool, withTenant } from '../services/shared/db.js';
import type { NewEvent } from '../services/shared/contracts/events.js';
import { newWebhookSecret } from '../services/shared/contracts/webhooks.js';
import { insertEvents } from '../services/shared/outbox.js';
import { sealedBox } from '../services/shared/sealed-box.js';
import { createBenchDatabase, seedBenchTenant, startBenchServer, stopBenchServer } from './lib/bench-env.js';
import { Histogram } from './lib/histogram.js';

const here = dirname(fileURLToPath(import.meta.url));

interface ReceiverStats {
  received: number;
  firstAt: number;
  lastAt: number;
  latency: number[];
}

function askStats(receiver: ChildProcess): Promise<ReceiverStats> {
  return new Promise((resolve) => {
    const onMessage = (msg: { cmd: string } & ReceiverStats) => {
      if (msg.cmd !== 'stats') return;
      receiver.off('message', onMessage);
      resolve(msg);
    };
    receiver.on('message', onMessage);
    receiver.send({ cmd: 'stats' });
  });
}

async function waitForCount(receiver: ChildProcess, count: number, timeoutMs: number): Promise<ReceiverStats> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await askStats(receiver);
    if (stats.received >= count || Date.now() > deadline) return stats;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The baseline: `concurrency` loops each POSTing an envelope, awaiting its answer, and POSTing again. */
async function bareLoop(port: number, seconds: number, concurrency: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const body = JSON.stringify({ id: '1', event: 'work_order.created', tenant_id: randomUUID(), occurred_at: new Date().toISOString(), data: { id: randomUUID() } });
  const end = Date.now() + seconds * 1000;
  let done = 0;
  const post = () => new Promise<void>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/bare', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.on('error', reject);
    req.end(body);
  });
  const started = Date.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < end) {
      await post();
      done++;
    }
  }));
  agent.destroy();
  return done / ((Date.now() - started) / 1000);
}

export default async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '5' },
      rate: { type: 'string', default: '5000' },
      backlog: { type: 'string', default: '30000' },
      endpoints: { type: 'string', default: '4' },
      concurrency: { type: 'string', default: '64' },
    },
  });
  const seconds = Number(values.seconds);
  const rate = Number(values.rate);
  const backlog = Number(values.backlog);
  const endpoints = Number(values.endpoints);
  const concurrency = Number(values.concurrency);
  const perEndpoint = Math.max(1, Math.ceil(concurrency / endpoints));

  const database = await createBenchDatabase({
    WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
    WEBHOOK_ENDPOINT_CONCURRENCY: String(perEndpoint),
    WEBHOOK_MAX_IN_FLIGHT: String(perEndpoint * endpoints),
    WEBHOOK_SECRET_KEY: randomUUID() + randomUUID(),
  });
  const { child: receiver, ready } = await startBenchServer<{ port: number }>('lib/webhook-receiver.ts', {});
  let role: ChildProcess | null = null;
  const workerPool = createServicePool(database.config, 'worker', 4);
  try {
    const { tenantId } = await seedBenchTenant(database.owner, 0);
    const box = sealedBox(database.config.webhookSecretKey, 'webhook-secrets');
    await withTenant(database.owner, tenantId, (db) => db.query(
      `insert into webhooks (tenant_id, url, events, secret_sealed)
       select $1, $2 || n, '{*}', s from unnest($3::bytea[]) with ordinality as t(s, n)`,
      [tenantId, `http://127.0.0.1:${ready.port}/hook/`, Array.from({ length: endpoints }, () => box.seal(newWebhookSecret()))]));
    const assets = Array.from({ length: 1000 }, () => randomUUID());
    let n = 0;
    const events = (count: number): NewEvent[] => Array.from({ length: count }, () => {
      const assetId = assets[n++ % assets.length]!;
      return {
        tenantId, type: 'asset.geofence_entered', occurredAt: new Date().toISOString(), idempotencyKey: randomUUID(), assetId,
        data: { asset_id: assetId, device_id: assetId, geofence_id: assetId, geofence_name: 'Depot', geofence_kind: 'site', lat: 45.76, lon: 4.83, ts: new Date().toISOString(), accuracy_m: 5, speed_mps: 3 },
      };
    });

    // 1. Baseline.
    const bare = await bareLoop(ready.port, seconds, concurrency);
    receiver.send({ cmd: 'reset' });

    // 2. Drain a backlog.
    for (let written = 0; written < backlog; written += 1000) await insertEvents(workerPool, events(Math.min(1000, backlog - written)));
    ({ child: role } = await startBenchServer('lib/webhooks-role.ts', database.env));
    const drained = await waitForCount(receiver, backlog * endpoints, 600_000);
    // From the first delivery to the last: the role's start-up is not part of it.
    const drainPerS = drained.received / (Math.max(1, drained.lastAt - drained.firstAt) / 1000);
    receiver.send({ cmd: 'reset' });

    // 3. Latency at a steady rate, role running: a batch every 10 ms, up to 4 inserts under way.
    const perBatch = Math.max(1, Math.round(rate / endpoints / 100));
    const latencyStarted = Date.now();
    let offeredEvents = 0;
    const writing = new Set<Promise<unknown>>();
    while (Date.now() - latencyStarted < seconds * 1000) {
      const due = Math.floor(((Date.now() - latencyStarted) / 10)) * perBatch;
      if (offeredEvents < due && writing.size < 4) {
        const insert = insertEvents(workerPool, events(perBatch)).finally(() => writing.delete(insert));
        writing.add(insert);
        offeredEvents += perBatch;
      } else {
        await Promise.race([new Promise((resolve) => setTimeout(resolve, 2)), ...writing]);
      }
    }
    await Promise.all(writing);
    const steady = await waitForCount(receiver, offeredEvents * endpoints, 60_000);
    const latency = new Histogram(steady.latency);

    const result = {
      scenario: 'webhooks', at: new Date().toISOString(), seconds, endpoints, concurrency, backlog,
      bareReqPerS: Math.round(bare),
      drain: { deliveries: drained.received, expected: backlog * endpoints, perS: Math.round(drainPerS), ratioToBare: +(drainPerS / bare).toFixed(2) },
      steady: {
        offeredPerS: Math.round((offeredEvents * endpoints) / seconds), deliveries: steady.received, expected: offeredEvents * endpoints,
        p50Ms: latency.percentileMs(0.5), p99Ms: latency.percentileMs(0.99),
      },
    };
    console.table({
      'bare loop (req/s)': { value: result.bareReqPerS },
      'drain (deliveries/s)': { value: result.drain.perS, note: `${result.drain.deliveries}/${result.drain.expected} arrived, ${result.drain.ratioToBare}× bare` },
      'steady offered (deliveries/s)': { value: result.steady.offeredPerS, note: `${result.steady.deliveries}/${result.steady.expected} arrived` },
      'event→delivery p50 (ms)': { value: result.steady.p50Ms },
      'event→delivery p99 (ms)': { value: result.steady.p99Ms },
    });
    const out = join(here, 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, `webhooks-${Date.now()}.json`), JSON.stringify(result, null, 2));
  } finally {
    if (role) await stopBenchServer(role);
    await stopBenchServer(receiver);
    await workerPool.end();
    await database.close();
  }
}
