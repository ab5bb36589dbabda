import type { Asset, Device } from './api.js';
import type { LivePosition } from './live.js';

/** What the page knows of one asset (or of a device not linked to an asset): the unit of the map and the list. */
export interface Track {
  /** The asset id, or the device id when the device has no asset: the key live positions use. */
  key: string;
  name: string;
  assetId: string | null;
  deviceId: string | null;
  lat: number | null;
  lon: number | null;
  headingDeg: number | null;
  speedMps: number | null;
  /** Device time of the last fix. */
  fixAtMs: number | null;
  /** When this page last heard of it (fix received or device contact). */
  seenAtMs: number | null;
}

export type TrackStatus = 'moving' | 'stopped' | 'offline' | 'no-fix';

const ONLINE_MS = 10 * 60_000;
const MOVING_MPS = 0.5;

export function statusOf(track: Track, nowMs = Date.now()): TrackStatus {
  if (track.lat === null) return 'no-fix';
  if (track.seenAtMs === null || nowMs - track.seenAtMs > ONLINE_MS) return 'offline';
  return (track.speedMps ?? 0) >= MOVING_MPS ? 'moving' : 'stopped';
}

const parseTime = (iso: string | null | undefined): number | null => {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(ms) ? null : ms;
};

export class Fleet {
  readonly tracks = new Map<string, Track>();
  private readonly assetNames = new Map<string, string>();
  private readonly deviceNames = new Map<string, string>();

  /** The first paint: devices with their last positions, named after their assets. */
  load(devices: Device[], assets: Asset[]): void {
    for (const asset of assets) this.assetNames.set(asset.id, asset.name);
    for (const device of devices) {
      this.deviceNames.set(device.id, device.name);
      if (device.kind !== 'tracker') continue;
      const key = device.asset_id ?? device.id;
      const last = device.last_position ?? null;
      const track = this.ensure(key, device.asset_id, device.id);
      const fixAtMs = parseTime(last?.ts);
      if (last && (track.fixAtMs === null || (fixAtMs ?? 0) >= track.fixAtMs)) {
        Object.assign(track, { lat: last.lat, lon: last.lon, headingDeg: last.heading_deg, speedMps: last.speed_mps, fixAtMs });
      }
      const seenAtMs = parseTime(device.last_seen_at) ?? fixAtMs;
      if (seenAtMs !== null && (track.seenAtMs === null || seenAtMs > track.seenAtMs)) track.seenAtMs = seenAtMs;
    }
  }

  /** Applies a live position; returns the track, or null for a fix older than the one shown. */
  apply(position: LivePosition): Track | null {
    const key = position.asset_id ?? position.device_id;
    const track = this.ensure(key, position.asset_id, position.device_id);
    const fixAtMs = parseTime(position.ts);
    if (track.fixAtMs !== null && fixAtMs !== null && fixAtMs < track.fixAtMs) return null;
    Object.assign(track, {
      lat: position.lat,
      lon: position.lon,
      headingDeg: position.heading_deg,
      speedMps: position.speed_mps,
      fixAtMs,
      seenAtMs: Date.now(),
      deviceId: position.device_id,
    });
    return track;
  }

  nameOf(assetId: unknown, deviceId?: unknown): string | null {
    if (typeof assetId === 'string') return this.tracks.get(assetId)?.name ?? this.assetNames.get(assetId) ?? null;
    if (typeof deviceId === 'string') return this.tracks.get(deviceId)?.name ?? this.deviceNames.get(deviceId) ?? null;
    return null;
  }

  private ensure(key: string, assetId: string | null, deviceId: string | null): Track {
    let track = this.tracks.get(key);
    if (!track) {
      const name = (assetId && this.assetNames.get(assetId)) || (deviceId && this.deviceNames.get(deviceId)) || `${assetId ? 'Asset' : 'Device'} ${key.slice(0, 8)}`;
      track = { key, name, assetId, deviceId, lat: null, lon: null, headingDeg: null, speedMps: null, fixAtMs: null, seenAtMs: null };
      this.tracks.set(key, track);
    }
    return track;
  }
}
