import type { Pool } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import type { RejectReason } from '../../ingest/decode.js';
import type { DeviceRef } from '../../ingest/rows.js';
import { PeriodicWriter } from './periodic-writer.js';

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
export class DeviceRejectionWriter extends PeriodicWriter<Map<string, Pending>> {
  private pending = new Map<string, Pending>();

  constructor(private readonly pool: Pool, private readonly log: Logger, intervalMs = 1000) {
    super(intervalMs);
  }

  add(device: DeviceRef, reason: RejectReason, count: number): void {
    this.addCount(device.id, device.tenantId, reason, count);
  }

  private addCount(deviceId: string, tenantId: string, reason: RejectReason, count: number): void {
    let entry = this.pending.get(deviceId);
    if (!entry) this.pending.set(deviceId, (entry = { tenantId, counts: new Map() }));
    entry.counts.set(reason, (entry.counts.get(reason) ?? 0) + count);
  }

  protected take(): Map<string, Pending> | null {
    if (this.pending.size === 0) return null;
    const batch = this.pending;
    this.pending = new Map();
    return batch;
  }

  protected async store(batch: Map<string, Pending>): Promise<void> {
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
    await this.pool.query(UPSERT_REJECTIONS, [deviceIds, tenantIds, reasons, counts]);
  }

  /** Counts not written are added to those gathered meanwhile, for the next round. */
  protected giveBack(batch: Map<string, Pending>, err: unknown): void {
    this.log.warn({ err, devices: batch.size }, 'device rejection counts not written; kept for the next round');
    for (const [deviceId, entry] of batch) for (const [reason, n] of entry.counts) this.addCount(deviceId, entry.tenantId, reason, n);
  }
}
