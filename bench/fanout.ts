/**
 * `npm run bench -- fanout [--sockets=100,1000,5000] [--duration 5s] [--deliveries=N | --window=P] [--receivers=2] [--sample=4] [--bbox] [--embedded]`
 *
 * N dispatcher sockets of one tenant subscribed to positions on the realtime role (its own process,
 * as `fieldops start --role realtime`), positions XADDed to the `positions:{n}` shards (each stamped
 * with its publish time) as fast as the sockets take them: at most a window of positions ahead of what
 * every socket has received (`--window`, by default ≈ 100,000 deliveries), as the bare loop below stays
 * within its socket's buffer — a fixed offered rate would bound the result by the offer, not by the
 * server. `--deliveries=N` offers a fixed rate instead (N / sockets positions per second), for latency
 * at a load both sides carry. Lean raw-socket receivers in
 * child processes count frames; a few sampled sockets decode every frame for publish→receive latency.
 * Then, in the same run, a bare uWebSockets.js app publishing the same messages as fast as the same
 * sockets take them: the ceiling the role is compared against. `--bbox` subscribes with a bounding box
 * that holds every position, to measure the per-socket filtering path instead of the tenant topic.
 * Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL: a database and prefix of its own). `--embedded` runs the role on the embedded defaults instead
 * (in-process bus, embedded PostgreSQL): the positions are then published inside the role's process.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RedisStreamBus } from '../services/shared/redis-bus.js';
import { createBenchDatabase } from './lib/bench-env.js';
import { loadConfig } from '../services/shared/config.js';
import { sessionTokens } from '../services/shared/jwt.js';
import { row, target, withRatios, type BenchRow, type RoleUsage, type ScenarioResult } from './lib/bench-result.js';
import { ask, child, reply, sleep } from './lib/child-ipc.js';
import { Histogram, type LatencySummary } from './lib/histogram.js';
import { mergeUsage, processRssMb, RoleSampler } from './lib/proc-stats.js';
import { pick, type ScenarioContext } from './lib/scenario.js';
import { PositionPublisher } from './lib/position-publisher.js';
import { streamNames } from '../services/shared/contracts/stream-codec.js';

interface Mark {
  frames: number;
  latenciesMs: number[];
}

/**
 * Deliveries the unpaced publisher may be ahead of what the sockets have taken: enough to keep them busy
 * between two pacing rounds, few enough that the latency column is not mostly the window's own queue.
 */
const WINDOW_DELIVERIES = 100_000;
/** At most ≈ 115 KB of frames per socket: under half the role's conflation bound (REALTIME_CONFLATE_BYTES, 256 KB). */
const MAX_WINDOW = 500;
/**
 * Fewer starve the sockets at 5,000: 20 positions gave 0.19× and 0.61× the bare loop where 50–100 gave
 * 0.41–0.89× (one shared machine, so single runs swing; 20 never came near).
 */
const MIN_WINDOW = 50;
/** How often the window moves up to what the sockets have taken. */
const PACE_MS = 10;

interface StageResult {
  deliveriesPerS: number;
  latency: LatencySummary;
  samples: number;
}



export default async function fanout(argv: string[], context?: ScenarioContext): Promise<ScenarioResult> {
  const { values } = parseArgs({
    args: argv,
    options: {
      sockets: { type: 'string' },
      seconds: { type: 'string' },
      deliveries: { type: 'string' },
      window: { type: 'string' },
      receivers: { type: 'string', default: '2' },
      sample: { type: 'string', default: '4' },
      bbox: { type: 'boolean', default: false },
      // The role on the embedded defaults: no REDIS_URL (in-process bus, positions published inside the
      // role's process), no DATABASE_URL (the embedded PostgreSQL in a fresh DATA_DIR).
      embedded: { type: 'boolean', default: false },
    },
  });
  const socketCounts = (values.sockets ?? (context?.settings.quick ? '100,1000' : '100,1000,5000')).split(',').map(Number);
  const seconds = pick(values.seconds ? Number(values.seconds) : context?.settings.durationS, context, 5, 2);
  const targetDeliveries = values.deliveries ? Number(values.deliveries) : null;
  const receiverCount = Number(values.receivers);
  const samplePerReceiver = Number(values.sample);
  const windowOf = (sockets: number) => (values.window ? Number(values.window)
    : Math.min(MAX_WINDOW, Math.max(MIN_WINDOW, Math.round(WINDOW_DELIVERIES / sockets))));

  const base = loadConfig();
  // The server path: a migrated database and a Redis prefix of the run's own (the role seeds its tenant and user there).
  const bench = values.embedded ? null : await createBenchDatabase({});
  const redisUrl = bench?.config.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = bench?.config.REDIS_PREFIX ?? `bench-fanout-${randomBytes(4).toString('hex')}:`;
  const jwtSecret = randomBytes(32).toString('hex');
  const names = streamNames(prefix, base.POSITION_SHARDS);
  const embeddedDir = values.embedded ? mkdtempSync(join(tmpdir(), 'fieldops-bench-fanout-')) : null;

  const role = child('lib/fanout-role.ts', {
    ...process.env, REDIS_PREFIX: prefix, JWT_SECRET: jwtSecret, HOST: '127.0.0.1', REALTIME_PORT: '0', LOG_LEVEL: 'warn',
    ...(embeddedDir
      // Empty means unset (config.ts): the embedded database and the in-process bus.
      ? { DATABASE_URL: '', REDIS_URL: '', DATA_DIR: embeddedDir, FIELDOPS_DEMO: '0' }
      : { REDIS_URL: redisUrl, DATABASE_URL: bench!.config.DATABASE_URL, DATA_DIR: bench!.env.DATA_DIR!, MIGRATE_ON_START: 'false' }),
  });
  const { port: rolePort, tenantId, userId } = await reply<{ port: number; tenantId: string; userId: string }>(role, 'ready');
  const token = sessionTokens(jwtSecret).sign({ sub: userId, tid: tenantId, role: 'admin', scopes: ['live.read'] }, 3600).token;
  const receivers = Array.from({ length: receiverCount }, () => child('lib/fanout-receivers.ts'));
  await Promise.all(receivers.map((r) => reply(r, 'ready')));
  const bus = embeddedDir ? null : new RedisStreamBus(redisUrl, prefix);
  const local = bus ? new PositionPublisher(bus, names, tenantId) : null;
  const publisher = {
    start: (perSecond: number | null) => (local ? Promise.resolve(local.start(perSecond)) : ask(role, { cmd: 'publish', tenantId, perSecond }, 'publishing')),
    stop: () => (local ? Promise.resolve(local.stop()) : ask(role, { cmd: 'unpublish' }, 'unpublished')),
    limit: (limit: number) => (local ? (local.limit = limit) : role.send({ cmd: 'limit', limit })),
  };
  const roleIdleRssMb = processRssMb(role.pid!);
  const usage: RoleUsage[] = [];

  async function connectAll(port: number, path: string, subscribe: string, total: number): Promise<void> {
    await Promise.all(receivers.map((r, i) => {
      const count = Math.floor(total / receiverCount) + (i < total % receiverCount ? 1 : 0);
      return ask(r, { cmd: 'connect', host: '127.0.0.1', port, path, count, sample: samplePerReceiver, subscribe }, 'connected');
    }));
  }

  /** Keeps an unpaced publisher `window` positions ahead of what the sockets have taken, until the returned stop. */
  function pace(sockets: number, window: number): () => Promise<void> {
    let running = true;
    const loop = (async () => {
      while (running) {
        const counts = await Promise.all(receivers.map((r) => ask<number>(r, { cmd: 'count' }, 'count')));
        publisher.limit(Math.floor(counts.reduce((s, c) => s + c, 0) / sockets) + window);
        await sleep(PACE_MS);
      }
    })();
    return () => {
      running = false;
      return loop;
    };
  }

  async function measure(): Promise<StageResult> {
    await Promise.all(receivers.map((r) => ask<Mark>(r, { cmd: 'mark' }, 'mark')));
    const startedMs = Date.now();
    const before = (await Promise.all(receivers.map((r) => ask<Mark>(r, { cmd: 'mark' }, 'mark')))).reduce((s, m) => s + m.frames, 0);
    await sleep(seconds * 1000);
    const after = await Promise.all(receivers.map((r) => ask<Mark>(r, { cmd: 'mark' }, 'mark')));
    const elapsedS = (Date.now() - startedMs) / 1000;
    const frames = after.reduce((s, m) => s + m.frames, 0) - before;
    const latencies = after.flatMap((m) => m.latenciesMs);
    return { deliveriesPerS: Math.round(frames / elapsedS), latency: Histogram.ofMs(latencies).summary(), samples: latencies.length };
  }

  const rows: BenchRow[] = [];
  try {
    for (const sockets of socketCounts) {
      const ratePerS = targetDeliveries === null ? null : Math.max(1, Math.round(targetDeliveries / sockets));
      const subscribe = { type: 'subscribe', channels: ['positions'], ...(values.bbox ? { bbox: [7, 46, 8, 47] } : {}) };
      await connectAll(rolePort, `/v1/live?token=${token}`, JSON.stringify(subscribe), sockets);
      await sleep(500);
      await publisher.start(ratePerS);
      const window = windowOf(sockets);
      const stopPacing = ratePerS === null ? pace(sockets, window) : null;
      await sleep(1000);
      const sampler = new RoleSampler([{ role: 'realtime', pid: role.pid! }]).start();
      const live = await measure();
      usage.push(...sampler.stop());
      await stopPacing?.();
      await publisher.stop();
      await sleep(300);
      await Promise.all(receivers.map((r) => ask(r, { cmd: 'close' }, 'closed')));

      const bare = child('lib/fanout-bare.ts');
      const barePort = await reply<number>(bare, 'port');
      await connectAll(barePort, '/bare', '', sockets);
      await sleep(300);
      bare.send({ cmd: 'start' });
      await sleep(1000);
      const reference = await measure();
      await ask(bare, { cmd: 'stop' }, 'stopped');
      await Promise.all(receivers.map((r) => ask(r, { cmd: 'close' }, 'closed')));
      bare.send({ cmd: 'exit' });
      await sleep(300);

      const name = `live, ${sockets.toLocaleString('en-US')} sockets`;
      const bareName = `bare uWS, ${sockets.toLocaleString('en-US')} sockets`;
      rows.push(
        row(name, live.deliveriesPerS, 'deliveries/s', live.latency, 0, {
          baseline: bareName,
          note: `${ratePerS === null ? `≤ ${window} positions ahead` : `${ratePerS.toLocaleString('en-US')} positions/s offered`}, ${live.samples} latency samples`,
        }),
        row(bareName, reference.deliveriesPerS, 'deliveries/s', reference.latency),
      );
      console.log(`  ${sockets} sockets: ${live.deliveriesPerS.toLocaleString('en-US')} deliveries/s (bare ${reference.deliveriesPerS.toLocaleString('en-US')})`);
    }
  } finally {
    local?.stop();
    role.send({ cmd: 'stop' });
    for (const r of receivers) r.kill();
    await new Promise<void>((resolve) => (role.exitCode !== null ? resolve() : role.once('exit', () => resolve())));
    await bus?.close();
    await bench?.close(); // drops the database and the Redis keys
    if (embeddedDir) rmSync(embeddedDir, { recursive: true, force: true });
  }

  const table = withRatios({
    title: `fan-out${embeddedDir ? ' (embedded defaults: in-process bus)' : ''} — positions to dispatcher sockets, ${seconds} s per stage, `
      + `${targetDeliveries === null ? 'as fast as the sockets take them' : `${targetDeliveries.toLocaleString('en-US')} deliveries/s offered`}${values.bbox ? ', bbox filter' : ''}`,
    rows,
  });
  // The issue's floor is read at 1,000 sockets (docs/design.md, "Performance"), else at the largest count run.
  const at = socketCounts.includes(1000) ? 1000 : Math.max(...socketCounts);
  const measured = rows.find((r) => r.name === `live, ${at.toLocaleString('en-US')} sockets`);
  return {
    scenario: 'fanout',
    settings: { seconds, sockets: socketCounts, targetDeliveries, window: values.window ? Number(values.window) : null, bbox: values.bbox, embedded: values.embedded, roleIdleRssMb },
    tables: [table],
    roles: mergeUsage(usage),
    targets: [target(`live fan-out vs bare uWS at ${at.toLocaleString('en-US')} sockets`, measured?.ratio ?? null, 0.6, 'at-least', '×')],
  };
}
