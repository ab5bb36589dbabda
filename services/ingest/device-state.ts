import type { Pool } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import type { CommittedBatch } from '../../ingest/batcher.js';
import { PeriodicWriter } from './periodic-writer.js';

interface LatestState {
  tenantId: string;
  seenAtMs: number;
  fixTsMs: number | null;
  lat: number | null;
  lon: number | null;
  speedMps: number | null;
  headingDeg: number | null;
  accuracyM: number | null;
  batteryPct: number | null;
}

// Only a newer fix replaces the stored one, so that a late batch (or another ingest node) never moves a device back.
const UPSERT_DEVICE_STATE = `
insert into device_state (device_id, tenant_id, last_seen_at, last_fix_ts, lat, lon, speed_mps, heading_deg, accuracy_m, battery_pct)
select u.d, u.t, timestamptz 'epoch' + u.seen * interval '1 millisecond',
       timestamptz 'epoch' + u.fix * interval '1 millisecond', u.la, u.lo, u.sp, u.hd, u.ac, u.bp
from unnest($1::uuid[], $2::uuid[], $3::int8[], $4::int8[], $5::float8[], $6::float8[], $7::float4[], $8::float4[], $9::float4[], $10::float4[])
  as u(d, t, seen, fix, la, lo, sp, hd, ac, bp)
where exists (select 1 from devices where devices.id = u.d)
on conflict (device_id) do update set
  last_seen_at = greatest(device_state.last_seen_at, excluded.last_seen_at),
  last_fix_ts = case when ${newer()} then excluded.last_fix_ts else device_state.last_fix_ts end,
  lat = case when ${newer()} then excluded.lat else device_state.lat end,
  lon = case when ${newer()} then excluded.lon else device_state.lon end,
  speed_mps = case when ${newer()} then excluded.speed_mps else device_state.speed_mps end,
  heading_deg = case when ${newer()} then excluded.heading_deg else device_state.heading_deg end,
  accuracy_m = case when ${newer()} then excluded.accuracy_m else device_state.accuracy_m end,
  battery_pct = case when ${newer()} then excluded.battery_pct else device_state.battery_pct end`;

function newer(): string {
  return 'excluded.last_fix_ts is not null and (device_state.last_fix_ts is null or excluded.last_fix_ts >= device_state.last_fix_ts)';
}

/**
 * Each device's last fix and last contact (for `GET /v1/devices` and the live map's first paint), gathered in
 * memory from committed batches and written at most once a second, one statement for every device that changed:
 * the hot commit never waits for it.
 */
export class DeviceStateWriter extends PeriodicWriter<Map<string, LatestState>> {
  private latest = new Map<string, LatestState>();

  constructor(private readonly pool: Pool, private readonly log: Logger, intervalMs = 1000) {
    super(intervalMs);
  }

  record(batch: CommittedBatch): void {
    const now = Date.now();
    const p = batch.positions;
    for (let i = 0; i < p.length; i++) {
      const deviceId = p.deviceId[i]!;
      const state = this.latest.get(deviceId);
      if (state && state.fixTsMs !== null && state.fixTsMs >= p.tsMs[i]!) {
        state.seenAtMs = now;
        continue;
      }
      if (state) { // updated in place: one object per device, not per fix
        state.fixTsMs = p.tsMs[i]!;
        state.seenAtMs = now;
        state.lat = p.lat[i]!;
        state.lon = p.lon[i]!;
        state.speedMps = p.speedMps[i]!;
        state.headingDeg = p.headingDeg[i]!;
        state.accuracyM = p.accuracyM[i]!;
        state.batteryPct = p.batteryPct[i]!;
        continue;
      }
      this.latest.set(deviceId, {
        tenantId: p.tenantId[i]!,
        seenAtMs: now,
        fixTsMs: p.tsMs[i]!,
        lat: p.lat[i]!,
        lon: p.lon[i]!,
        speedMps: p.speedMps[i]!,
        headingDeg: p.headingDeg[i]!,
        accuracyM: p.accuracyM[i]!,
        batteryPct: p.batteryPct[i]!,
      });
    }
    for (const punch of batch.punches) {
      const state = this.latest.get(punch.deviceId);
      if (state) state.seenAtMs = now;
      else {
        this.latest.set(punch.deviceId, {
          tenantId: punch.tenantId, seenAtMs: now, fixTsMs: null, lat: null, lon: null,
          speedMps: null, headingDeg: null, accuracyM: null, batteryPct: null,
        });
      }
    }
  }

  protected take(): Map<string, LatestState> | null {
    if (this.latest.size === 0) return null;
    const states = this.latest;
    this.latest = new Map();
    return states;
  }

  /** A failed write keeps its states for the next round, unless a newer one came meanwhile. */
  protected giveBack(states: Map<string, LatestState>, err: unknown): void {
    this.log.warn({ err, devices: states.size }, 'device state write failed; kept for the next round');
    for (const [id, state] of states) if (!this.latest.has(id)) this.latest.set(id, state);
  }

  protected store(states: Map<string, LatestState>): Promise<void> {
    return this.upsert(states);
  }

  private async upsert(states: Map<string, LatestState>): Promise<void> {
    const ids = [...states.keys()];
    const values = [...states.values()];
    await this.pool.query(UPSERT_DEVICE_STATE, [
      ids, values.map((s) => s.tenantId), values.map((s) => s.seenAtMs), values.map((s) => s.fixTsMs),
      values.map((s) => s.lat), values.map((s) => s.lon), values.map((s) => s.speedMps), values.map((s) => s.headingDeg),
      values.map((s) => s.accuracyM), values.map((s) => s.batteryPct),
    ]);
  }

}
