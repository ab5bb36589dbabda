/**
 * The load of the path scenarios (bench/e2e.ts, bench/soak.ts): a bench tenant with devices and fences on a platform
 * under test, a dispatcher's live socket listening for its events, and open-loop MQTT generators connected and
 * ready to `go` (bench/lib/mqtt-rate.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { withTenant } from '../../services/shared/db.js';
import { login, seedBenchTenant } from './bench-env.js';
import { ask, child, reply } from './child-ipc.js';
import { Histogram } from './histogram.js';
import type { RateDevice, RateResult, RateStart, RateWindow } from './mqtt-rate.js';
import type { PlatformUnderTest } from './platform-under-test.js';

export const EVENT_TYPES = ['asset.geofence_entered', 'asset.geofence_exited'];
/** Fences on a grid from here, 0.01° apart; each a square 0.002° across; "outside" is 0.003° north of its centre. */
const ORIGIN = { lat: 46.9, lon: 7.4 };

export interface PathLoad {
  rate: number;
  devices: number;
  seconds: number;
  warmupS: number;
  cycle: number;
  fences: number;
  generators: number;
}

/** The bench tenant's fences, and each device's inside and outside position (device i at fence i mod count). */
export async function seedFences(platform: PlatformUnderTest, tenantId: string, count: number): Promise<[number, number][]> {
  const centres = Array.from({ length: count }, (_, k): [number, number] => [ORIGIN.lat + Math.floor(k / 10) * 0.01, ORIGIN.lon + (k % 10) * 0.01]);
  const squares = centres.map(([lat, lon]) => JSON.stringify({
    type: 'Polygon',
    coordinates: [[[lon - 0.001, lat - 0.001], [lon + 0.001, lat - 0.001], [lon + 0.001, lat + 0.001], [lon - 0.001, lat + 0.001], [lon - 0.001, lat - 0.001]]],
  }));
  await withTenant(platform.owner, tenantId, (db) => db.query(
    `insert into geofences (tenant_id, name, kind, geometry) select $1, 'bench fence ' || n, 'zone', g from unnest($2::jsonb[]) with ordinality as f (g, n)`,
    [tenantId, squares],
  ));
  return centres;
}

/** The generator processes, connected and ready to `go`. */
export async function startGenerators(mqtt: { host: string; port: number }, devices: RateDevice[], load: Pick<PathLoad, 'rate' | 'cycle' | 'generators'>,
  helpers: ChildProcess[], qos: 0 | 1 = 1): Promise<{ children: ChildProcess[]; connectErrors: number }> {
  const children = Array.from({ length: load.generators }, () => child('lib/mqtt-rate.ts'));
  helpers.push(...children);
  const connected = await Promise.all(children.map((c, g) => ask<number>(c, {
    cmd: 'start', host: mqtt.host, port: mqtt.port, devices: devices.filter((_, i) => i % load.generators === g),
    perSecond: load.rate / load.generators, cycle: load.cycle, qos,
  } satisfies RateStart, 'connected')));
  const connectErrors = devices.length - connected.reduce((a, b) => a + b, 0);
  if (connectErrors === devices.length) throw new Error(`no device could connect to ${mqtt.host}:${mqtt.port}`);
  return { children, connectErrors };
}

/** Every generator's window since the last one, added up. */
export async function windowOf(children: ChildProcess[]): Promise<{ sent: number; acked: number; shed: number; histogram: Histogram }> {
  const windows = await Promise.all(children.map((c) => ask<RateWindow>(c, { cmd: 'window' }, 'window')));
  const histogram = new Histogram();
  for (const w of windows) histogram.add(new Histogram(w.histogram));
  return { sent: sum(windows.map((w) => w.sent)), acked: sum(windows.map((w) => w.acked)), shed: sum(windows.map((w) => w.shed)), histogram };
}

export async function stopGenerators(children: ChildProcess[]): Promise<RateResult[]> {
  return Promise.all(children.map((c) => (c.exitCode !== null ? null : ask<RateResult>(c, { cmd: 'stop' }, 'result').catch(() => null))))
    .then((results) => results.filter((r): r is RateResult => r !== null));
}

export const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

export interface OpenPath {
  tenantId: string;
  jwt: string;
  listener: ChildProcess;
  children: ChildProcess[];
  connectErrors: number;
}

/** Seeds the tenant, connects the listener and the generators; every process it forks goes into `helpers` at once. */
export async function openPath(platform: PlatformUnderTest, load: PathLoad, helpers: ChildProcess[]): Promise<OpenPath> {
  const { tenantId, devices } = await seedBenchTenant(platform.owner, load.devices);
  const centres = await seedFences(platform, tenantId, load.fences);
  const rateDevices: RateDevice[] = devices.map((d, i) => {
    const [lat, lon] = centres[i % centres.length]!;
    return { ...d, inside: [lat, lon], outside: [lat + 0.003, lon] };
  });
  const jwt = await login(platform.apiUrl, tenantId);
  const listener = child('lib/live-listener.ts');
  helpers.push(listener);
  await reply(listener, 'ready');
  // A live socket that fails or closes mid-run would read as events lost: say so where it happens.
  listener.on('message', (m: { failed?: string; closed?: number }) => {
    if (m.failed !== undefined || m.closed !== undefined) console.log(`  (the dispatcher's live socket ${m.failed ? `failed: ${m.failed}` : `closed with ${m.closed}`})`);
  });
  await ask(listener, { cmd: 'connect', url: `${platform.liveUrl}?token=${jwt}` }, 'connected');
  const { children, connectErrors } = await startGenerators(platform.mqtt, rateDevices, load, helpers);
  return { tenantId, jwt, listener, children, connectErrors };
}
