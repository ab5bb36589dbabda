import type { Pool } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import type { RejectReason } from '../../ingest/decode.js';
import type { DeviceRef } from '../../ingest/rows.js';

// Added to what is stored; a device deleted meanwhile is skipped (its rows went with it).
const UPSERT_REJECTIONS = `
insert into device_rejections (device_id, tenant_id, reason, count, last_at)
select u.d, u.t, u.r, u.n, now()
from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int8[]) as u(d, t, r, n)
where exists (select 1 from devices where devices.id = u.d)
on conflict (device_id, reason) do update set count = device_rejections.count + excluded.count, last_at = excluded.last_at`;

interface Pending {
  tenantId: string;
  counts: Map<RejectReason, number>;
}

/**
 * Refusals per device and reason (docs/design.md, "Device contract": counted per device, shown on the device
 * through the API, never as a metrics label), summed in memory and added to `device_rejections` once a second
 * in one statement, off the path of the refused message.
 */
export class DeviceRejectionWriter {
  private pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;

  constructor(private readonly pool: Pool, private readonly log: Logger, private readonly intervalMs = 1000) {}

  start(): void {
    this.timer = setInterval(() => void this.write(), this.intervalMs);
    this.timer.unref();
  }

  add(device: DeviceRef, reason: RejectReason, count: number): void {
    let entry = this.pending.get(device.id);
    if (!entry) this.pending.set(device.id, (entry = { tenantId: device.tenantId, counts: new Map() }));
    entry.counts.set(reason, (entry.counts.get(reason) ?? 0) + count);
  }

  /** Writes what was counted since the last write; a failed write keeps its counts for the next round. */
  write(): Promise<void> {
    if (this.writing || this.pending.size === 0) return this.writing ?? Promise.resolve();
    const batch = this.pending;
    this.pending = new Map();
    const deviceIds: string[] = [];
    const tenantIds: string[] = [];
    const reasons: string[] = [];
    const counts: number[] = [];
    for (const [deviceId, entry] of batch) {
      for (const [reason, n] of entry.counts) {
        deviceIds.push(deviceId);
        tenantIds.push(entry.tenantId);
        reasons.push(reason);
        counts.push(n);
      }
    }
    this.writing = this.pool.query(UPSERT_REJECTIONS, [deviceIds, tenantIds, reasons, counts])
      .then(() => {}, (err) => {
        this.log.warn({ err, devices: batch.size }, 'device rejection counts not written; kept for the next round');
        for (const [deviceId, entry] of batch) {
          for (const [reason, n] of entry.counts) this.add({ id: deviceId, tenantId: entry.tenantId, assetId: null, siteId: null }, reason, n);
        }
      })
      .finally(() => { this.writing = null; });
    return this.writing;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.writing;
    await this.write();
  }
}
