import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_START_TIMEOUT_MS, embeddedDataDir } from '../support/embedded.js';
import { liveUrl } from '../realtime/fixtures.js';
import { LiveClient } from '../realtime/live-client.js';

/**
 * `npm start` on a fresh machine: no DATABASE_URL, no REDIS_URL, an empty database. The start seeds
 * the demo organization once, prints its login on one line, and its simulated fleet drives over MQTT
 * so that positions reach a dispatcher's socket at once. Ctrl-C stops it with exit 0; the next start
 * keeps the data, seeds nothing and drives the same fleet.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));
const entry = fileURLToPath(new URL('../support/cli-entry.ts', import.meta.url));
const LOGIN = /^demo login: email=(\S+) password=(\S+) organization_id=([0-9a-f-]{36})$/m;

let dataDir: string;
const children: ChildProcess[] = [];

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  api: string;
  realtimePort: number;
}

/** `fieldops start` as a user runs it, with the servers' variables removed from the environment. */
async function start(): Promise<Started> {
  const env: NodeJS.ProcessEnv = {
    ...process.env, DATA_DIR: dataDir, HOST: '127.0.0.1', API_PORT: '0', REALTIME_PORT: '0', MQTT_PORT: '0', LOG_LEVEL: 'warn',
  };
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'REDIS_PREFIX', 'JWT_SECRET', 'FIELDOPS_DEMO']) delete env[name];
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'start'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await expect.poll(() => stdout, { timeout: 180_000, interval: 200 }).toMatch(/^\s+live\s+ws:\/\/\S+:(\d+)\//m);
  } catch (err) {
    child.kill('SIGKILL'); // it holds the data directory: the next start must find it free
    await exited;
    throw err;
  }
  return {
    child,
    output: () => stdout,
    exited,
    api: stdout.match(/^\s+api\s+(http:\/\/\S+)/m)![1]!.replace('localhost', '127.0.0.1'),
    realtimePort: Number(stdout.match(/^\s+live\s+ws:\/\/\S+:(\d+)\//m)![1]),
  };
}

async function signIn(api: string, login: RegExpMatchArray): Promise<string> {
  const response = await fetch(`${api}/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: login[1], password: login[2], organization_id: login[3] }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: { token: string } }).data.token;
}

/** Positions of at least `devices` distinct demo devices on a dispatcher's socket. */
async function demoPositions(realtimePort: number, token: string, devices: number): Promise<Set<string>> {
  const dispatcher = await LiveClient.connect(liveUrl(realtimePort, token));
  try {
    await dispatcher.request({ type: 'subscribe', channels: ['positions'] });
    const seen = new Set<string>();
    while (seen.size < devices) {
      const position = await dispatcher.next((m) => m.type === 'position', 'a demo position', 60_000);
      seen.add(position.device_id as string);
    }
    return seen;
  } finally {
    dispatcher.close();
  }
}

async function stop(started: Started, signal: NodeJS.Signals): Promise<{ code: number | null; ms: number }> {
  const begun = Date.now();
  started.child.kill(signal);
  const code = await started.exited;
  return { code, ms: Date.now() - begun };
}

beforeAll(async () => {
  dataDir = await embeddedDataDir();
}, EMBEDDED_START_TIMEOUT_MS);

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start on an empty embedded database', () => {
  let login: RegExpMatchArray;
  let firstDevices: Set<string>;

  it('seeds the demo organization, prints its login once, and its fleet reaches the live map; Ctrl-C exits 0', async () => {
    const first = await start();
    expect(first.output()).toMatch(/^\s+database\s+embedded PostgreSQL/m);
    expect(first.output()).toMatch(/^\s+bus\s+in-process/m);
    await expect.poll(() => first.output(), { timeout: 30_000 }).toMatch(LOGIN);
    login = first.output().match(LOGIN)!;
    expect(first.output().match(new RegExp(LOGIN.source, 'gm'))).toHaveLength(1);
    expect(login[2]!.length).toBeGreaterThanOrEqual(16);

    const token = await signIn(first.api, login);
    firstDevices = await demoPositions(first.realtimePort, token, 3);
    const devices = await fetch(`${first.api}/v1/devices?limit=100`, { headers: { authorization: `Bearer ${token}` } });
    const listed = ((await devices.json()) as { data: { id: string; kind: string }[] }).data;
    expect(listed.filter((d) => d.kind === 'tracker').length).toBeGreaterThanOrEqual(3);
    expect(listed.filter((d) => d.kind === 'attendance').length).toBeGreaterThanOrEqual(1);
    for (const id of firstDevices) expect(listed.map((d) => d.id)).toContain(id);

    const { code, ms } = await stop(first, 'SIGINT');
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
  }, 300_000);

  it('keeps the data on the next start, seeds nothing more, and drives the same fleet; SIGTERM exits 0', async () => {
    const second = await start();
    expect(second.output()).toMatch(/^\s+demo\s+driving the demo fleet/m);
    expect(second.output()).not.toMatch(/demo login:/);

    const token = await signIn(second.api, login);
    const devices = await demoPositions(second.realtimePort, token, 2);
    for (const id of devices) expect([...firstDevices, ...devices]).toContain(id);
    const me = await fetch(`${second.api}/v1/devices?limit=100`, { headers: { authorization: `Bearer ${token}` } });
    const listed = ((await me.json()) as { data: { id: string }[] }).data.map((d) => d.id);
    for (const id of devices) expect(listed).toContain(id);

    const { code, ms } = await stop(second, 'SIGTERM');
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
  }, 300_000);
});
