import mqtt, { type MqttClient } from 'mqtt';
import type { TestDevice } from '../support/factories.js';
import { within } from '../support/wait.js';
import { fixKey } from './stream-tail.js';

export interface TrackerLoadOptions {
  /** The ingest nodes' MQTT URLs: device i starts on node i % n and moves on to the next when its node goes away. */
  mqttUrls: string[];
  /** Pause between a device's fixes, once the previous one is acknowledged. */
  intervalMs: number;
  /** Where a device's fix lies: its index and the fix's number. */
  where?: (device: number, k: number) => { lat: number; lon: number };
  /** Fixes per device, then it stops (see `finished`); unset: until `stop`. */
  fixesPerDevice?: number;
}

/**
 * Trackers publishing QoS 1 fixes, one in flight per device, with session state kept across reconnects
 * (`clean: false`), as a real tracker does: a fix is acknowledged (PUBACK) or retransmitted after a
 * reconnect, never dropped by the client. Records which fixes were acknowledged.
 */
export class TrackerLoad {
  /** `device|ts_ms` of every fix the platform acknowledged. */
  readonly acknowledged = new Set<string>();
  /** `device|ts_ms` of every fix published (acknowledged or not yet). */
  readonly sent = new Set<string>();
  private readonly clients: MqttClient[] = [];
  /** Per device, its fix waiting for a PUBACK. */
  private readonly inFlight = new Map<string, string>();
  private running = true;
  private loops: Promise<void>[] = [];
  /** Device time of every device's fix 0; fix k is `t0 + k * 1000`. */
  readonly t0 = Date.now() - 5 * 60_000;

  constructor(private readonly devices: TestDevice[], private readonly options: TrackerLoadOptions) {}

  async start(): Promise<void> {
    const servers = this.options.mqttUrls.map((u) => new URL(u)).map((u) => ({ host: u.hostname, port: Number(u.port) }));
    for (const [i, device] of this.devices.entries()) {
      const rotated = [...servers.slice(i % servers.length), ...servers.slice(0, i % servers.length)];
      const client = await within(30_000, `tracker ${i} to connect to ${JSON.stringify(rotated[0])}`, mqtt.connectAsync({
        servers: rotated,
        username: device.id,
        password: device.token,
        clientId: device.id,
        clean: false,
        protocolVersion: 4,
        reconnectPeriod: 250,
        // A tracker keeps trying after a refused CONNACK too (3, server unavailable, while the database is down).
        reconnectOnConnackError: true,
        connectTimeout: 5000,
      }));
      client.on('error', () => {}); // refused while a server is down: mqtt.js retries by itself
      this.clients.push(client);
    }
    this.loops = this.devices.map((device, i) => this.drive(device, i, this.clients[i]!));
  }

  private async drive(device: TestDevice, index: number, client: MqttClient): Promise<void> {
    for (let k = 0; this.running && k < (this.options.fixesPerDevice ?? Infinity); k++) {
      // Fixes 1 s apart in device time, in the past: distinct keys, within every time window.
      const tsMs = this.t0 + k * 1000;
      const at = this.options.where?.(index, k) ?? { lat: 45 + index / 1000, lon: 7 + k / 100_000 };
      const key = fixKey(device.id, tsMs);
      this.sent.add(key);
      this.inFlight.set(device.id, key);
      await client.publishAsync(`fieldops/${device.id}/gps/json`, JSON.stringify({ fixes: [{ ts_ms: tsMs, ...at, accuracy_m: 5, speed_mps: 3 }] }), { qos: 1 });
      this.acknowledged.add(key);
      this.inFlight.delete(device.id);
      await new Promise((resolve) => setTimeout(resolve, this.options.intervalMs));
    }
  }

  /**
   * Cuts every other tracker's TCP connection, as a network cut would: each reconnects (to the next node
   * when its own is gone) and retransmits its unacknowledged fix (DUP), which must be stored once.
   */
  cutConnections(): number {
    let cut = 0;
    this.clients.forEach((client, i) => {
      if (i % 2 === 0 && client.connected) {
        client.stream.destroy();
        cut++;
      }
    });
    return cut;
  }

  /** Every device has published its `fixesPerDevice` fixes and had them acknowledged. */
  async finished(): Promise<void> {
    await Promise.all(this.loops);
  }

  /** Acknowledged so far. */
  get count(): number {
    return this.acknowledged.size;
  }

  /** Stops at once, as trackers whose server went away for good: what is in flight stays unacknowledged. */
  async halt(): Promise<void> {
    this.running = false;
    await Promise.all(this.clients.map((c) => c.endAsync(true)));
  }

  /** Stops publishing once every fix in flight is acknowledged (so none is left unanswered), then disconnects. */
  async stop(timeoutMs = 60_000): Promise<void> {
    this.running = false;
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`fixes never acknowledged within ${timeoutMs} ms: ${[...this.inFlight.values()].join(', ')} `
        + `(clients connected: ${this.clients.filter((c) => c.connected).length} of ${this.clients.length})`)), timeoutMs);
    });
    try {
      await Promise.race([Promise.all(this.loops), stuck]);
    } finally {
      clearTimeout(timer);
    }
    await Promise.all(this.clients.map((c) => c.endAsync()));
  }
}

