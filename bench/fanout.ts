/**
 * `npm run bench -- fanout [--sockets=100,1000,5000] [--seconds=5] [--deliveries=1200000] [--receivers=2] [--sample=4] [--bbox] [--embedded]`
 *
 * N dispatcher sockets of one tenant subscribed to positions on the realtime role (its own process,
 * as `fieldops start --role realtime`), positions XADDed to the `positions:{n}` shards at a fixed
 * rate (deliveries / N per second, each stamped with its publish time). Lean raw-socket receivers in
 * child processes count frames; a few sampled sockets decode every frame for publish→receive latency.
 * Then, in the same run, a bare uWebSockets.js app publishing the same messages as fast as the same
 * sockets take them: the ceiling the role is compared against. `--bbox` subscribes with a bounding box
 * that holds every position, to measure the per-socket filtering path instead of the tenant topic.
 * Needs Redis (REDIS_URL); no database. `--embedded` runs the role on the embedded defaults instead
 * (in-process bus, embedded PostgreSQL): the positions are then published inside the role's process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { deleteKeysWithPrefix, RedisStreamBus } from '../services/shared/redis-bus.js';
import { loadConfig } from '../services/shared/config.js';
import { sessionTokens } from '../services/shared/jwt.js';
import { PositionPublisher } from './lib/position-publisher.js';
import { streamNames } from '../services/shared/contracts/stream-codec.js';

const here = dirname(fileURLToPath(import.meta.url));

interface Mark {
  frames: number;
  latenciesMs: number[];
}

interface StageResult {
  deliveriesPerS: number;
  p50Ms: number | null;
  p99Ms: number | null;
  samples: number;
}

function child(file: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  return fork(join(here, file), [], { execArgv: ['--import', 'tsx'], env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function reply<T>(proc: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`child exited (${code}) before "${key}"`));
    const onMessage = (m: Record<string, unknown>) => {
      if (key in m) {
        proc.off('message', onMessage);
        proc.off('exit', onExit);
        resolve(m[key] as T);
      }
    };
    proc.on('message', onMessage);
    proc.once('exit', onExit);
  });
}

async function ask<T>(proc: ChildProcess, message: object, key: string): Promise<T> {
  const answer = reply<T>(proc, key);
  proc.send(message);
  return answer;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Math.round(Number(match[1]) / 1024) : NaN;
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export default async function fanout(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      sockets: { type: 'string', default: '100,1000,5000' },
      seconds: { type: 'string', default: '5' },
      deliveries: { type: 'string', default: '1200000' },
      receivers: { type: 'string', default: '2' },
      sample: { type: 'string', default: '4' },
      bbox: { type: 'boolean', default: false },
      // The role on the embedded defaults: no REDIS_URL (in-process bus, positions published inside the
      // role's process), no DATABASE_URL (the embedded PostgreSQL in a fresh DATA_DIR).
      embedded: { type: 'boolean', default: false },
    },
  });
  const socketCounts = values.sockets.split(',').map(Number);
  const seconds = Number(values.seconds);
  const targetDeliveries = Number(values.deliveries);
  const receiverCount = Number(values.receivers);
  const samplePerReceiver = Number(values.sample);

  const base = loadConfig();
  const redisUrl = base.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = `bench-fanout-${randomBytes(4).toString('hex')}:`;
  const jwtSecret = randomBytes(32).toString('hex');
  const names = streamNames(prefix, base.POSITION_SHARDS);
  const embeddedDir = values.embedded ? mkdtempSync(join(tmpdir(), 'fieldops-bench-fanout-')) : null;

  const role = child('lib/fanout-role.ts', {
    ...process.env, REDIS_PREFIX: prefix, JWT_SECRET: jwtSecret, HOST: '127.0.0.1', REALTIME_PORT: '0', LOG_LEVEL: 'warn',
    ...(embeddedDir
      // Empty means unset (config.ts): the embedded database and the in-process bus.
      ? { DATABASE_URL: '', REDIS_URL: '', DATA_DIR: embeddedDir, FIELDOPS_DEMO: '0' }
      : { REDIS_URL: redisUrl, DATABASE_URL: base.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/fieldops', MIGRATE_ON_START: 'false' }),
  });
  const { port: rolePort, tenantId, userId } = await reply<{ port: number; tenantId: string; userId: string }>(role, 'ready');
  const token = sessionTokens(jwtSecret).sign({ sub: userId, tid: tenantId, role: 'admin', scopes: ['live.read'] }, 3600).token;
  const receivers = Array.from({ length: receiverCount }, () => child('lib/fanout-receivers.ts'));
  await Promise.all(receivers.map((r) => reply(r, 'ready')));
  const bus = embeddedDir ? null : new RedisStreamBus(redisUrl, prefix);
  const local = bus ? new PositionPublisher(bus, names, tenantId) : null;
  const publisher = {
    start: (perSecond: number) => (local ? Promise.resolve(local.start(perSecond)) : ask(role, { cmd: 'publish', tenantId, perSecond }, 'publishing')),
    stop: () => (local ? Promise.resolve(local.stop()) : ask(role, { cmd: 'unpublish' }, 'unpublished')),
  };
  const roleIdleRssMb = rssMb(role.pid!);

  async function connectAll(port: number, path: string, subscribe: string, total: number): Promise<void> {
    await Promise.all(receivers.map((r, i) => {
      const count = Math.floor(total / receiverCount) + (i < total % receiverCount ? 1 : 0);
      return ask(r, { cmd: 'connect', host: '127.0.0.1', port, path, count, sample: samplePerReceiver, subscribe }, 'connected');
    }));
  }

  async function measure(): Promise<StageResult> {
    await Promise.all(receivers.map((r) => ask<Mark>(r, { cmd: 'mark' }, 'mark')));
    const startedMs = Date.now();
    const before = (await Promise.all(receivers.map((r) => ask<Mark>(r, { cmd: 'mark' }, 'mark')))).reduce((s, m) => s + m.frames, 0);
    await sleep(seconds * 1000);
    const after = await Promise.all(receivers.map((r) => ask<Mark>(r, { cmd: 'mark' }, 'mark')));
    const elapsedS = (Date.now() - startedMs) / 1000;
    const frames = after.reduce((s, m) => s + m.frames, 0) - before;
    const latencies = after.flatMap((m) => m.latenciesMs).sort((a, b) => a - b);
    return { deliveriesPerS: Math.round(frames / elapsedS), p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), samples: latencies.length };
  }

  const rows: Record<string, unknown>[] = [];
  try {
    for (const sockets of socketCounts) {
      const ratePerS = Math.max(1, Math.round(targetDeliveries / sockets));
      const subscribe = { type: 'subscribe', channels: ['positions'], ...(values.bbox ? { bbox: [7, 46, 8, 47] } : {}) };
      await connectAll(rolePort, `/v1/live?token=${token}`, JSON.stringify(subscribe), sockets);
      await sleep(500);
      await publisher.start(ratePerS);
      await sleep(1000);
      const live = await measure();
      const roleRssMb = rssMb(role.pid!);
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

      const row = {
        sockets,
        offered_positions_per_s: ratePerS,
        deliveries_per_s: live.deliveriesPerS,
        p50_ms: live.p50Ms,
        p99_ms: live.p99Ms,
        latency_samples: live.samples,
        role_rss_mb: roleRssMb,
        bare_deliveries_per_s: reference.deliveriesPerS,
        bare_p50_ms: reference.p50Ms,
        bare_p99_ms: reference.p99Ms,
        vs_bare: Number((live.deliveriesPerS / reference.deliveriesPerS).toFixed(2)),
      };
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  } finally {
    local?.stop();
    role.send({ cmd: 'stop' });
    for (const r of receivers) r.kill();
    await new Promise<void>((resolve) => (role.exitCode !== null ? resolve() : role.once('exit', () => resolve())));
    if (bus) {
      await deleteKeysWithPrefix(redisUrl, prefix);
      await bus.close();
    }
    if (embeddedDir) rmSync(embeddedDir, { recursive: true, force: true });
  }

  console.log(`\nfanout${embeddedDir ? ' (embedded defaults: in-process bus)' : ''}: ${seconds} s per stage, target ${targetDeliveries.toLocaleString()} deliveries/s, role idle RSS ${roleIdleRssMb} MB`);
  console.table(rows.map((r) => ({
    sockets: r.sockets, 'positions/s': r.offered_positions_per_s, 'deliveries/s': r.deliveries_per_s, 'p50 ms': r.p50_ms, 'p99 ms': r.p99_ms,
    'role RSS MB': r.role_rss_mb, 'bare deliveries/s': r.bare_deliveries_per_s, 'vs bare': r.vs_bare,
  })));
  const resultsDir = join(here, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `fanout-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ scenario: 'fanout', embedded: values.embedded, seconds, targetDeliveries, bbox: values.bbox, roleIdleRssMb, rows }, null, 2));
  console.log(`results: ${file}`);
}
