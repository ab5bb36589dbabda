import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from '../shared/log.js';
import { DEMO_EMPLOYEES, DEMO_VEHICLES, routeWaypoints, siteByKey, type DemoVehicle, type LonLat } from './demo-fleet.js';

/** A device of the demo fleet, as the simulator drives it (the token is the device's MQTT password). */
export type SimulatedDevice =
  | { kind: 'tracker'; id: string; token: string; vehicle: string }
  | { kind: 'attendance'; id: string; token: string; site: string };

export interface FleetSimulatorOptions {
  /** The broker, e.g. mqtt://localhost:1883. */
  mqttUrl: string;
  devices: SimulatedDevice[];
  log: Logger;
  fixIntervalMs?: number;
  /** Mean time between two punches at one clock. */
  punchIntervalMs?: number;
}

const EARTH_RADIUS_M = 6_371_000;
const UNKNOWN_BADGE = 'B-9999';

/**
 * Drives the demo fleet over real MQTT, as devices in the field would (docs/design.md, "Device contract"): each
 * device connects with client id = username = its id and its token as password, trackers publish a
 * fix a second on `fieldops/{id}/gps/json` along their loop, clocks punch the crew in and out on
 * `fieldops/{id}/punch/json` — now and then from too far away (not GPS-verified) or with a badge
 * nobody holds. QoS 1: the broker acknowledges after commit.
 */
export class FleetSimulator {
  private readonly clients: MqttClient[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly clockedIn = new Set<string>();
  private readonly startedMs = Date.now();
  private closing: Promise<void> | null = null;
  readonly stats = { fixes: 0, punches: 0, acknowledged: 0, refused: 0 };

  constructor(private readonly options: FleetSimulatorOptions) {}

  start(): void {
    const trackers = this.options.devices.filter((d) => d.kind === 'tracker');
    trackers.forEach((device, i) => this.startTracker(device, i / Math.max(1, trackers.length)));
    for (const device of this.options.devices) if (device.kind === 'attendance') this.startClock(device);
    this.options.log.info({ trackers: trackers.length, clocks: this.options.devices.length - trackers.length, broker: this.options.mqttUrl },
      'demo fleet driving');
  }

  private connect(device: SimulatedDevice): MqttClient {
    const client = mqtt.connect(this.options.mqttUrl, {
      clientId: device.id,
      username: device.id,
      password: device.token,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 2000,
      connectTimeout: 5000,
    });
    let warned = false;
    client.on('error', (err) => {
      if (!warned) this.options.log.warn({ device_id: device.id, err: err.message }, 'demo device cannot connect');
      warned = true;
    });
    client.on('connect', () => { warned = false; });
    this.clients.push(client);
    return client;
  }

  private startTracker(device: Extract<SimulatedDevice, { kind: 'tracker' }>, phase: number): void {
    const vehicle = DEMO_VEHICLES.find((v) => v.name === device.vehicle);
    if (!vehicle) {
      this.options.log.warn({ device_id: device.id, vehicle: device.vehicle }, 'demo tracker drives no known vehicle; skipped');
      return;
    }
    const route = new Loop(vehicle);
    const client = this.connect(device);
    const topic = `fieldops/${device.id}/gps/json`;
    const offsetS = phase * route.cycleS;
    let seq = 0;
    const tick = () => {
      const at = route.positionAt((Date.now() - this.startedMs) / 1000 + offsetS);
      const fix = {
        ts_ms: Date.now(),
        lat: at.position[1],
        lon: at.position[0],
        speed_mps: at.speedMps,
        heading_deg: at.headingDeg,
        accuracy_m: 4 + Math.random() * 4,
        battery_pct: 80 + 20 * Math.cos(Date.now() / 3_600_000),
        seq: seq++ >>> 0,
      };
      this.publish(client, topic, { fixes: [fix] }, 'fixes');
    };
    this.timers.push(setInterval(tick, this.options.fixIntervalMs ?? 1000));
  }

  private startClock(device: Extract<SimulatedDevice, { kind: 'attendance' }>): void {
    const site = siteByKey(device.site);
    const client = this.connect(device);
    const topic = `fieldops/${device.id}/punch/json`;
    const meanMs = this.options.punchIntervalMs ?? 20_000;
    const punch = () => {
      const roll = Math.random();
      const badge = roll < 0.07 ? UNKNOWN_BADGE : DEMO_EMPLOYEES[Math.floor(Math.random() * DEMO_EMPLOYEES.length)]!.badgeCode;
      const kind = this.clockedIn.has(badge) ? 'out' : 'in';
      if (kind === 'in') this.clockedIn.add(badge);
      else this.clockedIn.delete(badge);
      // One punch in ten comes from 700 m away: stored, evented, but not GPS-verified.
      const away = roll > 0.9 ? 700 : 8 * Math.random();
      const position = offset(site.center, away, Math.random() * 360);
      this.publish(client, topic, { ts_ms: Date.now(), employee_id: badge, kind, lat: position[1], lon: position[0], accuracy_m: 6 }, 'punches');
      this.timers.push(setTimeout(punch, meanMs * (0.5 + Math.random())));
    };
    this.timers.push(setTimeout(punch, meanMs * Math.random()));
  }

  private publish(client: MqttClient, topic: string, payload: unknown, counter: 'fixes' | 'punches'): void {
    if (!client.connected) return; // a device out of coverage: nothing sent, nothing queued
    this.stats[counter]++;
    client.publish(topic, JSON.stringify(payload), { qos: 1 }, (err) => {
      if (err) this.stats.refused++;
      else this.stats.acknowledged++;
    });
  }

  /** Stops publishing and disconnects every device, waiting briefly for acknowledgements in flight. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const timer of this.timers) clearTimeout(timer);
      await Promise.all(this.clients.map((client) => Promise.race([
        client.endAsync(),
        new Promise<void>((resolve) => setTimeout(resolve, 2000)).then(() => client.endAsync(true)),
      ]).catch(() => {})));
    })();
    return this.closing;
  }
}

interface RoutePosition {
  position: LonLat;
  speedMps: number;
  headingDeg: number;
}

/** A vehicle's loop: legs between waypoints driven at constant speed, a stop at each site. */
class Loop {
  private readonly legs: { from: LonLat; to: LonLat; driveS: number; dwellS: number; headingDeg: number }[] = [];
  readonly cycleS: number;

  constructor(private readonly vehicle: DemoVehicle) {
    const stops = routeWaypoints(vehicle);
    for (let i = 0; i < stops.length; i++) {
      const from = stops[i]!;
      const to = stops[(i + 1) % stops.length]!;
      this.legs.push({ from: from.at, to: to.at, dwellS: from.dwellS, driveS: distanceM(from.at, to.at) / vehicle.speedMps, headingDeg: bearingDeg(from.at, to.at) });
    }
    this.cycleS = this.legs.reduce((sum, leg) => sum + leg.dwellS + leg.driveS, 0);
  }

  positionAt(seconds: number): RoutePosition {
    let t = ((seconds % this.cycleS) + this.cycleS) % this.cycleS;
    for (const leg of this.legs) {
      if (t < leg.dwellS) return { position: leg.from, speedMps: 0, headingDeg: leg.headingDeg };
      t -= leg.dwellS;
      if (t < leg.driveS) {
        const f = t / leg.driveS;
        // A little wander across the road, so the trail looks driven rather than drawn.
        const wander = Math.sin(seconds / 7) * 0.00003;
        return {
          position: [leg.from[0] + (leg.to[0] - leg.from[0]) * f + wander, leg.from[1] + (leg.to[1] - leg.from[1]) * f - wander],
          speedMps: this.vehicle.speedMps,
          headingDeg: leg.headingDeg,
        };
      }
      t -= leg.driveS;
    }
    return { position: this.legs[0]!.from, speedMps: 0, headingDeg: 0 };
  }
}

const rad = (deg: number) => (deg * Math.PI) / 180;

function distanceM(a: LonLat, b: LonLat): number {
  const dLat = rad(b[1] - a[1]);
  const dLon = rad(b[0] - a[0]);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a[1])) * Math.cos(rad(b[1])) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.sqrt(h));
}

function bearingDeg(a: LonLat, b: LonLat): number {
  const y = Math.sin(rad(b[0] - a[0])) * Math.cos(rad(b[1]));
  const x = Math.cos(rad(a[1])) * Math.sin(rad(b[1])) - Math.sin(rad(a[1])) * Math.cos(rad(b[1])) * Math.cos(rad(b[0] - a[0]));
  return ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
}

/** The point `meters` from `origin` towards `bearing` (flat earth: fine over a few hundred metres). */
function offset(origin: LonLat, meters: number, bearing: number): LonLat {
  const dLat = (meters * Math.cos(rad(bearing))) / EARTH_RADIUS_M;
  const dLon = (meters * Math.sin(rad(bearing))) / (EARTH_RADIUS_M * Math.cos(rad(origin[1])));
  return [origin[0] + (dLon * 180) / Math.PI, origin[1] + (dLat * 180) / Math.PI];
}
