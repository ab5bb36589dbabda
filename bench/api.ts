/**
 * `npm run bench -- api [--seconds 5] [--warmup 1] [--connections 32] [--devices 200] [--pool N] [--phases healthz,me,list-jwt,list-key,create]`
 *
 * The REST API (`fieldops start --role api`, in its own process, on a fresh bench database) under
 * autocannon, one phase after the other in the same run: GET /healthz (no auth, no database: the
 * ceiling of this Fastify app here), GET /v1/me, GET /v1/devices?limit=20 with a session JWT, the same
 * with an API key, and POST /v1/devices. Prints req/s and latency p50/p99; results go to bench/results/.
 * The tenant is on `unlimited` (API keys need it), so the rate limit lets everything through.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { BENCH_ADMIN, createBenchDatabase, seedBenchTenant, startBenchServer, stopBenchServer } from './lib/bench-env.js';

const here = dirname(fileURLToPath(import.meta.url));

interface PhaseResult {
  name: string;
  method: string;
  path: string;
  reqPerS: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  errors: number;
}

interface Phase {
  key: string;
  name: string;
  method: 'GET' | 'POST';
  path: string;
  auth: 'none' | 'jwt' | 'key';
  body?: string;
}

const PHASES: Phase[] = [
  { key: 'healthz', name: 'GET /healthz (ceiling)', method: 'GET', path: '/healthz', auth: 'none' },
  { key: 'me', name: 'GET /v1/me (JWT)', method: 'GET', path: '/v1/me', auth: 'jwt' },
  { key: 'list-jwt', name: 'GET /v1/devices?limit=20 (JWT)', method: 'GET', path: '/v1/devices?limit=20', auth: 'jwt' },
  { key: 'list-key', name: 'GET /v1/devices?limit=20 (API key)', method: 'GET', path: '/v1/devices?limit=20', auth: 'key' },
  { key: 'create', name: 'POST /v1/devices (JWT)', method: 'POST', path: '/v1/devices', auth: 'jwt', body: JSON.stringify({ name: 'bench device', kind: 'tracker' }) },
];

export default async function apiBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '32' },
      devices: { type: 'string', default: '200' },
      pool: { type: 'string' },
      phases: { type: 'string', default: PHASES.map((p) => p.key).join(',') },
    },
  });
  const wanted = values.phases!.split(',');
  const connections = Number(values.connections);
  const bench = await createBenchDatabase({ API_PORT: '0', ...(values.pool ? { DATABASE_POOL_SIZE: values.pool } : {}) });
  const { env, config, owner } = bench;
  console.log(`api bench: ${connections} connections, ${values.seconds}s per phase (+${values.warmup}s warm-up), ${values.devices} devices, `
    + `DATABASE_POOL_SIZE=${config.DATABASE_POOL_SIZE} (${cpus().length} cores)`);
  let server: ChildProcess | null = null;
  const results: PhaseResult[] = [];
  try {
    const { tenantId: orgId } = await seedBenchTenant(owner, Number(values.devices));
    const started = await startBenchServer<{ api: string }>('lib/api-server.ts', env);
    server = started.child;
    const base = started.ready.api;
    const jwt = await login(base, orgId);
    const apiKey = await createApiKey(base, jwt);
    const headersFor = (auth: Phase['auth']): Record<string, string> =>
      auth === 'none' ? {} : { authorization: `Bearer ${auth === 'jwt' ? jwt : apiKey}` };
    for (const phase of PHASES.filter((p) => wanted.includes(p.key))) {
      const headers = { ...headersFor(phase.auth), ...(phase.body ? { 'content-type': 'application/json' } : {}) };
      const target = { url: base + phase.path, method: phase.method, headers, body: phase.body, connections };
      await check(target, phase);
      process.stdout.write(`  ${phase.name.padEnd(36)} `);
      if (Number(values.warmup) > 0) await autocannon({ ...target, duration: Number(values.warmup) });
      const r = await autocannon({ ...target, duration: Number(values.seconds) });
      const result: PhaseResult = {
        name: phase.name, method: phase.method, path: phase.path,
        reqPerS: Math.round(r.requests.average), p50Ms: r.latency.p50, p99Ms: r.latency.p99,
        requests: r.requests.total, non2xx: r.non2xx, errors: r.errors,
      };
      results.push(result);
      console.log(`${fmt(result.reqPerS).padStart(7)} req/s   p50 ${String(result.p50Ms).padStart(4)} ms   p99 ${String(result.p99Ms).padStart(4)} ms`
        + (result.non2xx || result.errors ? `   (${result.non2xx} non-2xx, ${result.errors} errors)` : ''));
    }
  } finally {
    if (server) await stopBenchServer(server);
    await bench.close();
  }
  report(results, { connections, seconds: Number(values.seconds), devices: Number(values.devices), pool: config.DATABASE_POOL_SIZE });
}

async function login(base: string, orgId: string): Promise<string> {
  const res = await fetch(`${base}/v1/auth/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: BENCH_ADMIN.email, password: BENCH_ADMIN.password, organization_id: orgId }),
  });
  if (res.status !== 200) throw new Error(`login: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { data: { token: string } }).data.token;
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

function report(results: PhaseResult[], params: Record<string, number>): void {
  const ceiling = results.find((r) => r.path === '/healthz');
  if (ceiling) {
    console.log('');
    for (const r of results) if (r !== ceiling) console.log(`  ${r.name.padEnd(36)} ${Math.round((r.reqPerS / ceiling.reqPerS) * 100)}% of /healthz`);
  }
  const dir = join(here, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `api-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ scenario: 'api', at: new Date().toISOString(), cores: cpus().length, params, phases: results }, null, 2)}\n`);
  console.log(`  results: ${file}`);
}

const fmt = (n: number) => n.toLocaleString('en-US');
