import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import type { Config } from '../../services/shared/config.js';
import type { Queryable } from '../../services/shared/db.js';
import type { Platform } from '../../services/start.js';
import { startRoles } from '../support/platform.js';
import { waitFor } from '../support/wait.js';

export interface IngestUnderTest {
  platform: Platform;
  mqttUrl: string;
  httpBase: string;
  wsUrl: string;
  close(): Promise<void>;
}

/** The ingest role alone, as `fieldops start --role ingest` runs it, on free ports. */
export async function startIngest(config: Config): Promise<IngestUnderTest> {
  const platform = await startRoles(config, ['ingest']);
  const ingest = platform.roles.find((r) => r.name === 'ingest')!;
  const mqttUrl = ingest.endpoints.mqtt!.replace('localhost', '127.0.0.1');
  return {
    platform,
    mqttUrl,
    httpBase: `http://127.0.0.1:${platform.realtimePort}`,
    wsUrl: `ws://127.0.0.1:${platform.realtimePort}/v1/ingest`,
    close: () => platform.close(),
  };
}

export async function connectDevice(url: string, deviceId: string, token: string, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    username: deviceId,
    password: token,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    clientId: deviceId, // the contract: client id = device id
    ...options,
  });
}

/** Resolves with the error a connect attempt fails with (or throws when it succeeds). */
export async function connectError(url: string, options: IClientOptions): Promise<Error & { code?: number }> {
  try {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
    await client.endAsync();
  } catch (err) {
    return err as Error & { code?: number };
  }
  throw new Error('connect unexpectedly succeeded');
}

export const closed = (client: MqttClient): Promise<void> =>
  new Promise((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));

/**
 * The refusals counted for a device (device_rejections, what the devices API shows), once they equal `expected`:
 * ingest writes them about once a second. Fails with what was last read.
 */
export async function refusalsOf(db: Queryable, deviceId: string, expected: Record<string, number>): Promise<Record<string, number>> {
  let last: Record<string, number> = {};
  try {
    return await waitFor(async () => {
      const { rows } = await db.query<{ reason: string; count: string }>('select reason, count from device_rejections where device_id = $1', [deviceId]);
      last = Object.fromEntries(rows.map((r) => [r.reason, Number(r.count)]));
      return JSON.stringify(sorted(last)) === JSON.stringify(sorted(expected)) && last;
    }, { what: `refusals ${JSON.stringify(expected)}`, timeoutMs: 5000 });
  } catch {
    return last;
  }
}

const sorted = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

/** Reads a counter sample from the text of GET /metrics. */
export async function metricValue(httpBase: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${httpBase}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
  }
  return 0;
}

/** A throwaway redis-server of our own, to stop and restart under the ingest (the shared one stays untouched). */
export class ScratchRedis {
  private child: ChildProcess | null = null;
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitFor(() => new Promise<boolean>((resolve) => {
      const socket = net.connect(this.port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    }), 'redis-server to listen');
  }

  /** Freezes the server (SIGSTOP): connections stay open, commands hang, as on a stalled host. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}
