/**
 * `npm run bench -- api [--seconds 5] [--warmup 1] [--connections 32] [--devices 200] [--work-orders 10000] [--quotes 30000] [--pool N]
 *   [--phases healthz,me,list-jwt,list-key,create,pg-work-orders,wo-list,wo-list-status,pg-work-order,wo-get,wo-create,
 *             pg-consume,consume,consume-contended,quote-accept,inspection]`
 *
 * The REST API (`fieldops start --role api`, in its own process, on a fresh bench database) under
 * autocannon, one phase after the other in the same run: GET /healthz (no auth, no database: the
 * ceiling of this Fastify app here), GET /v1/me, GET /v1/devices?limit=20 with a session JWT, the same
 * with an API key, and POST /v1/devices; then work orders on a tenant holding 10,000 of them: the
 * one-round-trip bare-`pg` baseline (the same page of the same rows through a bare pool, as many callers
 * as connections), then GET /v1/work-orders?limit=20 (plain and filtered by status), GET of single
 * orders (rotating over 1,000 ids) beside its own one-round-trip baseline (one order by id), and POST /v1/work-orders; then the business operations: a bare-`pg`
 * consume (one `update … where quantity >= 1` per call, over 1,000 parts), the API's consume movement
 * uncontended (the same 1,000 parts) and contended (every request on one part, so on one row lock),
 * accepting a quote with a signature (a different sent quote each time) and submitting an inspection
 * with a 200 KB photo (JSON, stored in the local file store). Prints req/s and latency p50/p99, the
 * work-order pages as a ratio to their baseline and the operations as a ratio to the bare consume;
 * results go to bench/results/. The tenant is on `unlimited` (API keys need it), so the rate limit lets
 * everything through.
 */
import type { ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { withTenant } from '../services/shared/db.js';
import { bareStatements } from './lib/bare-pool.js';
import { createBenchDatabase, login, seedBenchTenant, startBenchServer, stopBenchServer } from './lib/bench-env.js';
import { row, target, withRatios, type RoleUsage, type ScenarioResult } from './lib/bench-result.js';
import type { PlatformReady } from './lib/platform-server.js';
import { processSchedNs, RoleSampler } from './lib/proc-stats.js';
import { pick, type ScenarioContext } from './lib/scenario.js';
import { inspectionBody, seedBusinessOps, SIGNATURE, type OpsFixtures } from './lib/business-ops-fixtures.js';

interface PhaseResult {
  name: string;
  method: string;
  path: string;
  reqPerS: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  requests: number;
  non2xx: number;
  errors: number;
  /** The API process during the measured run: % of a core it ran, and % of the time it waited runnable for a core. */
  apiCpuPct?: number;
  apiWaitPct?: number;
}

interface Phase {
  key: string;
  name: string;
  method: 'GET' | 'POST';
  path: string;
  auth: 'none' | 'jwt' | 'key';
  body?: string;
  /** Needs the seeded work orders. */
  workOrders?: boolean;
  /** The request rotates over the seeded work orders' ids (`{id}` in the path). */
  perOrder?: boolean;
  /** Needs the quote, stock and inspection fixtures (bench/lib/business-ops-fixtures.ts). */
  ops?: boolean;
  /** `{id}` in the path rotates over these fixtures: sent quotes (each once), parts, or always the hot part. */
  rotate?: 'quotes' | 'items' | 'hot';
  /** The body, when it names fixtures. */
  bodyOf?: (ops: OpsFixtures) => string;
  /** Not an HTTP phase: a bare-pg baseline. */
  baseline?: 'work-order-page' | 'work-order-get' | 'consume';
}

const PHASES: Phase[] = [
  { key: 'healthz', name: 'GET /healthz (ceiling)', method: 'GET', path: '/healthz', auth: 'none' },
  { key: 'me', name: 'GET /v1/me (JWT)', method: 'GET', path: '/v1/me', auth: 'jwt' },
  { key: 'list-jwt', name: 'GET /v1/devices?limit=20 (JWT)', method: 'GET', path: '/v1/devices?limit=20', auth: 'jwt' },
  { key: 'list-key', name: 'GET /v1/devices?limit=20 (API key)', method: 'GET', path: '/v1/devices?limit=20', auth: 'key' },
  { key: 'create', name: 'POST /v1/devices (JWT)', method: 'POST', path: '/v1/devices', auth: 'jwt', body: JSON.stringify({ name: 'bench device', kind: 'tracker' }) },
  { key: 'pg-work-orders', name: 'bare pg: a page of 20 work orders', method: 'GET', path: '(pool)', auth: 'none', workOrders: true, baseline: 'work-order-page' },
  { key: 'wo-list', name: 'GET /v1/work-orders?limit=20', method: 'GET', path: '/v1/work-orders?limit=20', auth: 'jwt', workOrders: true },
  { key: 'wo-list-status', name: 'GET /v1/work-orders?status=scheduled', method: 'GET', path: '/v1/work-orders?limit=20&status=scheduled', auth: 'jwt', workOrders: true },
  { key: 'pg-work-order', name: 'bare pg: one work order by id', method: 'GET', path: '(pool: by id)', auth: 'none', workOrders: true, baseline: 'work-order-get' },
  { key: 'wo-get', name: 'GET /v1/work-orders/{id}', method: 'GET', path: '/v1/work-orders/{id}', auth: 'jwt', workOrders: true, perOrder: true },
  {
    key: 'wo-create', name: 'POST /v1/work-orders', method: 'POST', path: '/v1/work-orders', auth: 'jwt', workOrders: true,
    body: JSON.stringify({ title: 'Bench order', priority: 'high', description: 'created by the bench' }),
  },
  { key: 'pg-consume', name: 'bare pg: take 1 from stock', method: 'POST', path: '(pool: consume)', auth: 'none', ops: true, baseline: 'consume' },
  {
    key: 'consume', name: 'POST …/movements consume (1,000 parts)', method: 'POST', path: '/v1/inventory/{id}/movements', auth: 'jwt', ops: true, rotate: 'items',
    bodyOf: (ops) => JSON.stringify({ kind: 'consume', warehouse_id: ops.warehouseId, quantity: 1 }),
  },
  {
    key: 'consume-contended', name: 'POST …/movements consume (one part)', method: 'POST', path: '/v1/inventory/{id}/movements', auth: 'jwt', ops: true, rotate: 'hot',
    bodyOf: (ops) => JSON.stringify({ kind: 'consume', warehouse_id: ops.warehouseId, quantity: 1 }),
  },
  {
    key: 'quote-accept', name: 'POST /v1/quotes/{id}/accept', method: 'POST', path: '/v1/quotes/{id}/accept', auth: 'jwt', ops: true, rotate: 'quotes',
    bodyOf: () => JSON.stringify({ signed_by: 'Bench Client', signature: SIGNATURE }),
  },
  {
    key: 'inspection', name: 'POST /v1/inspection-forms (200 KB photo)', method: 'POST', path: '/v1/inspection-forms', auth: 'jwt', ops: true,
    bodyOf: (ops) => inspectionBody(ops.templateId, 200 * 1024),
  },
];

/** The select of GET /v1/work-orders and /v1/work-orders/{id} (services/api/repositories/work-orders.ts), for the baselines. */
const WORK_ORDER_SELECT = `select w.id, w.title, w.description, w.priority, w.status, w.held_from, w.client_id, w.site_id, w.asset_id, w.assignee_id,
  w.scheduled_start, w.scheduled_end, w.notes, w.started_at, w.completed_at, w.cancelled_at, w.archived_at, w.created_by,
  w.version, w.created_at, w.updated_at, o.signed_by, o.signed_at, o.signature_type, octet_length(o.signature) as signature_size
  from work_orders w left join work_order_signoffs o on o.work_order_id = w.id`;
const WORK_ORDER_PAGE_SQL = `${WORK_ORDER_SELECT}
 where w.tenant_id = $1 and w.archived_at is null order by w.created_at desc, w.id desc limit 21`;
const WORK_ORDER_GET_SQL = `${WORK_ORDER_SELECT} where w.tenant_id = $1 and w.id = $2`;

export default async function apiBench(argv: string[], context?: ScenarioContext): Promise<ScenarioResult> {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string', default: '32' },
      'work-orders': { type: 'string', default: '10000' },
      quotes: { type: 'string' },
      pool: { type: 'string' },
      phases: { type: 'string', default: PHASES.map((p) => p.key).join(',') },
    },
  });
  const wanted = values.phases!.split(',');
  // Quick: a second per phase, and fewer quotes to accept (each is accepted once).
  const seconds = pick(values.seconds ? Number(values.seconds) : context?.settings.durationS, context, 5, 1);
  const devices = pick(context?.settings.devices, context, 200, 200);
  const quotes = Number(values.quotes ?? (context?.settings.quick ? 5000 : 30000));
  const warmup = Number(values.warmup ?? (context?.settings.quick ? 0.5 : 1));
  const connections = Number(values.connections);
  const bench = await createBenchDatabase({ API_PORT: '0', ...(values.pool ? { DATABASE_POOL_SIZE: values.pool } : {}) });
  const { env, config, owner } = bench;
  console.log(`api bench: ${connections} connections, ${seconds}s per phase (+${warmup}s warm-up), ${devices} devices, `
    + `DATABASE_POOL_SIZE=${config.DATABASE_POOL_SIZE} (${cpus().length} cores)`);
  let server: ChildProcess | null = null;
  const results: PhaseResult[] = [];
  let usage: RoleUsage[] = [];
  try {
    const { tenantId: orgId } = await seedBenchTenant(owner, devices);
    const phases = PHASES.filter((p) => wanted.includes(p.key));
    const orderIds = phases.some((p) => p.workOrders) ? await seedWorkOrders(owner, orgId, Number(values['work-orders'])) : [];
    const ops = phases.some((p) => p.ops) ? await seedBusinessOps(owner, orgId, { quotes, items: 1000 }) : null;
    const started = await startBenchServer<PlatformReady>('lib/platform-server.ts', { ...env, BENCH_ROLES: 'api' });
    server = started.child;
    const base = started.ready.api!;
    const jwt = await login(base, orgId);
    const apiKey = await createApiKey(base, jwt);
    const headersFor = (auth: Phase['auth']): Record<string, string> =>
      auth === 'none' ? {} : { authorization: `Bearer ${auth === 'jwt' ? jwt : apiKey}` };
    const sampler = new RoleSampler([{ role: 'api', pid: server.pid! }]).start();
    for (const phase of phases) {
      process.stdout.write(`  ${phase.name.padEnd(40)} `);
      let result: PhaseResult;
      if (phase.baseline) {
        const run = (seconds: number) => phase.baseline === 'consume'
          ? bareConsumes(config.DATABASE_URL, ops!, config.DATABASE_POOL_SIZE, connections, seconds)
          : phase.baseline === 'work-order-get'
            ? bareWorkOrderGets(config.DATABASE_URL, orgId, orderIds.slice(0, 1000), config.DATABASE_POOL_SIZE, connections, seconds)
            : bareWorkOrderPages(config.DATABASE_URL, orgId, config.DATABASE_POOL_SIZE, connections, seconds);
        if (warmup > 0) await run(warmup);
        result = { name: phase.name, method: phase.method, path: phase.path, ...await run(seconds) };
      } else {
        const body = phase.bodyOf ? phase.bodyOf(ops!) : phase.body;
        const headers = { ...headersFor(phase.auth), ...(body ? { 'content-type': 'application/json' } : {}) };
        // Single orders over the first 1,000; sent quotes each once (the check takes the first); parts in turn.
        const rotation = phase.perOrder ? orderIds.slice(0, 1000)
          : phase.rotate === 'quotes' ? ops!.quoteIds : phase.rotate === 'items' ? ops!.itemIds : phase.rotate === 'hot' ? [ops!.hotItemId] : null;
        let next = 1;
        const url = base + (rotation ? phase.path.replace('{id}', rotation[0]!) : phase.path);
        const target = {
          url, method: phase.method, headers, body, connections,
          ...(rotation && rotation.length > 1
            ? { requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, path: phase.path.replace('{id}', rotation[next++ % rotation.length]!) }) }] }
            : {}),
        };
        await check(target, phase);
        if (warmup > 0) await autocannon({ ...target, duration: warmup });
        const before = processSchedNs(server.pid!);
        const startedAt = performance.now();
        const r = await autocannon({ ...target, duration: seconds });
        const sched = schedPct(before, processSchedNs(server.pid!), performance.now() - startedAt);
        result = {
          name: phase.name, method: phase.method, path: phase.path,
          reqPerS: Math.round(r.requests.average), p50Ms: r.latency.p50, p90Ms: r.latency.p90, p99Ms: r.latency.p99, maxMs: r.latency.max,
          requests: r.requests.total, non2xx: r.non2xx, errors: r.errors, ...sched,
        };
      }
      results.push(result);
      console.log(`${fmt(result.reqPerS).padStart(7)} req/s   p50 ${String(result.p50Ms).padStart(4)} ms   p99 ${String(result.p99Ms).padStart(4)} ms`
        + (result.apiCpuPct !== undefined ? `   api ${result.apiCpuPct}% CPU, ${result.apiWaitPct}% waiting for one` : '')
        + (result.non2xx || result.errors ? `   (${result.non2xx} non-2xx, ${result.errors} errors)` : ''));
    }
    usage = sampler.stop();
  } finally {
    if (server) await stopBenchServer(server);
    await bench.close();
  }
  return report(results, usage, {
    connections, seconds, devices, workOrders: Number(values['work-orders']), quotes, pool: config.DATABASE_POOL_SIZE,
  });
}

async function createApiKey(base: string, jwt: string): Promise<string> {
  const res = await fetch(`${base}/v1/api-keys`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
    body: JSON.stringify({ name: 'bench' }),
  });
  if (res.status !== 201) throw new Error(`api key: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { data: { key: string } }).data.key;
}

/** One request first, so that a phase measuring errors fails loudly instead of printing a fast 401. */
async function check(target: { url: string; method: string; headers: Record<string, string>; body?: string }, phase: Phase): Promise<void> {
  const res = await fetch(target.url, { method: target.method, headers: target.headers, body: target.body });
  if (res.status >= 300) throw new Error(`${phase.name}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

/**
 * `count` work orders in the bench tenant, one a minute back from now, drafts and scheduled ones of every
 * priority, as the API would have made them; returns their ids, newest first.
 */
async function seedWorkOrders(owner: pg.Pool, tenantId: string, count: number): Promise<string[]> {
  return withTenant(owner, tenantId, async (db) => (await db.query<{ id: string }>(
    `insert into work_orders (tenant_id, title, description, priority, status, scheduled_start, scheduled_end, created_at, updated_at)
     select $1, 'Order ' || n, 'Service visit ' || n, (array['low', 'normal', 'high', 'urgent'])[1 + n % 4],
            case when n % 3 = 0 then 'scheduled' else 'draft' end,
            case when n % 3 = 0 then now() + n * interval '1 hour' end,
            case when n % 3 = 0 then now() + n * interval '1 hour' + interval '2 hours' end,
            now() - n * interval '1 minute', now() - n * interval '1 minute'
       from generate_series(1, $2::int) as n
     returning id`,
    [tenantId, count],
  )).rows.map((r) => r.id));
}

/**
 * The baseline: the API's page of 20 work orders (its columns and join, newest first) as one statement on a
 * bare pool of `poolSize` connections (the owner, filtering on the tenant itself: no transaction, no RLS),
 * kept busy by `callers` concurrent loops for `seconds`.
 */
async function bareWorkOrderPages(url: string, tenantId: string, poolSize: number, callers: number, seconds: number) {
  return bareStatements(url, poolSize, callers, seconds, async (pool) => {
    const { rows } = await pool.query({ name: 'bench_work_order_page', text: WORK_ORDER_PAGE_SQL, values: [tenantId] });
    if (rows.length === 0) throw new Error('empty page');
  });
}

/** The baseline of a single order: the page's select for one id, rotating over the same 1,000 orders as the `wo-get` phase. */
async function bareWorkOrderGets(url: string, tenantId: string, ids: string[], poolSize: number, callers: number, seconds: number) {
  return bareStatements(url, poolSize, callers, seconds, async (pool, n) => {
    const { rows } = await pool.query({ name: 'bench_work_order_get', text: WORK_ORDER_GET_SQL, values: [tenantId, ids[n % ids.length]] });
    if (rows.length !== 1) throw new Error('no such order');
  });
}

/** The write baseline: one unit taken from a part's stock in one statement, the parts in turn (as the `consume` phase). */
async function bareConsumes(url: string, ops: OpsFixtures, poolSize: number, callers: number, seconds: number) {
  return bareStatements(url, poolSize, callers, seconds, async (pool, n) => {
    const { rowCount } = await pool.query({
      name: 'bench_consume',
      text: 'update inventory_stock set quantity = quantity - 1 where item_id = $1 and warehouse_id = $2 and quantity >= 1',
      values: [ops.itemIds[n % ops.itemIds.length], ops.warehouseId],
    });
    if (rowCount !== 1) throw new Error('no stock');
  });
}

/**
 * One table: every phase with its baseline — the work-order pages against the one-round-trip bare-pg page, the stock
 * operations against the bare consume, the rest against /healthz (the app's ceiling) — and the floor for
 * the list and get pages (≥ 0.7× the bare page).
 */
function report(results: PhaseResult[], roles: RoleUsage[], params: Record<string, number>): ScenarioResult {
  const has = (name: string | undefined) => (name && results.some((r) => r.name === name) ? name : undefined);
  const page = has(PHASES.find((p) => p.baseline === 'work-order-page')?.name);
  const single = has(PHASES.find((p) => p.baseline === 'work-order-get')?.name);
  const consume = has(PHASES.find((p) => p.baseline === 'consume')?.name);
  const ceiling = has(results.find((r) => r.path === '/healthz')?.name);
  const rows = results.map((r) => {
    const phase = PHASES.find((p) => p.name === r.name)!;
    const baseline = phase.baseline ? undefined
      : phase.perOrder ? single ?? page
      : phase.workOrders && phase.method === 'GET' ? page : phase.ops ? consume : r.path === '/healthz' ? undefined : ceiling;
    const note = r.apiCpuPct !== undefined ? `api process: ${r.apiCpuPct}% of a core, ${r.apiWaitPct}% waiting runnable for one` : undefined;
    return row(r.name, r.reqPerS, 'req/s', r, r.non2xx + r.errors, { ...(baseline ? { baseline } : {}), ...(note ? { note } : {}) });
  });
  const table = withRatios({ title: `REST API — ${params.connections} connections, ${params.seconds} s per phase, DATABASE_POOL_SIZE=${params.pool}`, rows });
  const ratioOf = (key: string) => table.rows.find((r) => r.name === PHASES.find((p) => p.key === key)!.name)?.ratio ?? null;
  return {
    scenario: 'api', settings: params, tables: [table], roles,
    targets: [
      target('GET /v1/work-orders page vs one-round-trip bare pg', ratioOf('wo-list'), 0.7, 'at-least', '×'),
      target('GET /v1/work-orders/{id} vs one-round-trip bare pg', ratioOf('wo-get'), 0.7, 'at-least', '×'),
    ],
  };
}

/**
 * The API process's event loop over a measured run: the share of a core it ran, and the share of the time it was ready
 * to run but waited for a core (others held both) — the second says how much of a phase the machine, not
 * the API, took. Nothing when /proc cannot tell.
 */
function schedPct(before: { runNs: number; waitNs: number }, after: { runNs: number; waitNs: number }, wallMs: number) {
  const pct = (ns: number) => Math.round((ns / 1e6 / wallMs) * 100);
  const run = after.runNs - before.runNs;
  const wait = after.waitNs - before.waitNs;
  return Number.isFinite(run) && Number.isFinite(wait) && wallMs > 0 ? { apiCpuPct: pct(run), apiWaitPct: pct(wait) } : {};
}

const fmt = (n: number) => n.toLocaleString('en-US');
