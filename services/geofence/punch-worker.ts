import { setTimeout as sleep } from 'node:timers/promises';
import type { StreamBus, StreamEntry } from '../shared/bus.js';
import { withTransaction, type Pool } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import { decodePunches, warnMalformed, type StreamNames } from '../shared/contracts/stream-codec.js';
import type { NewEventOf } from '../shared/contracts/events.js';
import { insertEvents } from '../shared/outbox.js';
import type { FenceCache } from './fence-cache.js';
import { geofenceMetrics } from './metrics.js';
import { createPunchRepository } from './punch-repository.js';
import { verifyPunch } from './punch-verifier.js';

export interface PunchWorkerOptions {
  group: string;
  workerId: string;
  blockMs: number;
  batchSize: number;
  /** A dead worker's unacknowledged punches are taken over once idle this long. */
  claimIdleMs: number;
}

/**
 * Verifies punches from the `punches` stream. Punches carry no per-employee order, so every worker
 * reads the one stream through the consumer group. Per batch, in one transaction: resolve the
 * employees and the devices' sites (to their fences), update the punch rows, insert the
 * `employee.punched_in|out` events (keyed by punch, so a replay adds nothing); acknowledge after
 * commit. Owns `bus` and closes it.
 */
export class PunchWorker {
  private loop: Promise<void> | null = null;
  private stopping = false;
  private lastIdleClaimAt = 0;
  private closing: Promise<void> | null = null;
  readonly stats = { punches: 0, events: 0 };

  constructor(
    private readonly deps: { bus: StreamBus; pool: Pool; fences: FenceCache; streams: StreamNames; log: Logger },
    private readonly options: PunchWorkerOptions,
  ) {}

  async start(): Promise<void> {
    await this.deps.bus.ensureGroup(this.deps.streams.punches, this.options.group, '0');
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const stream = this.deps.streams.punches;
    while (!this.stopping) {
      try {
        if (Date.now() - this.lastIdleClaimAt >= this.options.claimIdleMs / 2) {
          this.lastIdleClaimAt = Date.now();
          const claimed = await this.deps.bus.claimIdle(stream, this.options.group, this.options.workerId, this.options.claimIdleMs, this.options.batchSize);
          if (claimed.length) await this.processEntries(claimed);
        }
        const batches = await this.deps.bus.readGroup(this.options.group, this.options.workerId, [stream],
          { blockMs: this.options.blockMs, count: this.options.batchSize });
        for (const batch of batches) await this.processEntries(batch.entries);
      } catch (err) {
        if (this.stopping) return;
        this.deps.log.warn({ err }, 'punch verification failed; retrying');
        // Our own unacknowledged entries come back through the idle claim.
        this.lastIdleClaimAt = 0;
        await sleep(500);
      }
    }
  }

  private async processEntries(entries: StreamEntry[]): Promise<void> {
    const punches = decodePunches(entries, warnMalformed(this.deps.log));
    await this.deps.fences.ensure(punches.map((p) => p.tenant_id));
    const events: NewEventOf<'employee.punched_in' | 'employee.punched_out'>[] = [];
    const inserted = await withTransaction(this.deps.pool, async (db) => {
      const repository = createPunchRepository(db);
      const employeeIds = await repository.resolveEmployees(punches.map((p) => ({ tenantId: p.tenant_id, ref: p.employee_ref })));
      const siteFences = await repository.resolveSiteFences(punches.map((p) => ({ tenantId: p.tenant_id, siteId: p.site_id })));
      const rows = punches.map((punch, i) => {
        const verification = verifyPunch(this.deps.fences.get(punch.tenant_id), { ...punch, site_id: siteFences[i] ?? null });
        const employeeId = employeeIds[i] ?? null;
        const ts = new Date(punch.ts_ms).toISOString();
        events.push({
          tenantId: punch.tenant_id,
          type: punch.kind === 'out' ? 'employee.punched_out' : 'employee.punched_in',
          occurredAt: ts,
          idempotencyKey: `punch:${punch.id}`,
          deviceId: punch.device_id,
          employeeId,
          data: {
            employee_id: employeeId,
            employee_ref: punch.employee_ref,
            unknown_employee: employeeId === null,
            device_id: punch.device_id,
            kind: punch.kind,
            gps_verified: verification.gpsVerified,
            site_id: verification.siteId,
            distance_m: verification.distanceM,
            lat: punch.lat,
            lon: punch.lon,
            accuracy_m: punch.accuracy_m,
            ts,
            punch_id: punch.id,
          },
        });
        return { id: punch.id, tsMs: punch.ts_ms, employeeId, ...verification };
      });
      await repository.recordVerifications(rows);
      return insertEvents(db, events);
    });
    this.stats.events += inserted;
    await this.deps.bus.ack(this.deps.streams.punches, this.options.group, entries.map((e) => e.id));
    this.stats.punches += punches.length;
    const metrics = geofenceMetrics();
    for (const event of events) metrics.punches.inc({ verified: String(event.data.gps_verified) });
    if (inserted) metrics.events.inc({ source: 'punch' }, inserted);
  }

  /** Graceful: finishes the batch in hand, acknowledges it, then closes its bus. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      await this.loop?.catch(() => {});
      await this.deps.bus.close();
    })();
    return this.closing;
  }
}
