import type { Batcher, Settle } from './batcher.js';
import { decodeGps, decodePunch, type DecodeLimits, type FixRejection, type PayloadFormat, type RejectReason } from './decode.js';
import type { DeviceRef } from './rows.js';

export type Transport = 'mqtt' | 'ws' | 'http';

/** Where refusals are counted (by reason; per device when it is known) and logged: the ingest role's RejectionReporter. */
export interface RejectionSink {
  reject(device: DeviceRef | null, reason: RejectReason, count?: number, detail?: Record<string, unknown>): void;
}

/** Messages per transport, summed in plain numbers on the hot path (the role's metrics read them at scrape time). */
export interface MessageCounts {
  messages: Record<Transport, number>;
}

export interface IntakeResult {
  /** Rows went to the batcher: `settle` will be called after their commit. Otherwise it is not called. */
  stored: boolean;
  accepted: number;
  /** Fixes dropped one by one (the rest of the batch was kept). */
  rejected: FixRejection[];
  /** Why the whole message was refused, when it was. */
  reason?: RejectReason;
}

/**
 * What every transport does with a message once it knows the device: decode, validate, count what is refused
 * (per device and reason), hand the rest to the batcher. Transports differ only in how they answer.
 */
export class IngestIntake {
  constructor(
    private readonly batcher: Batcher,
    private readonly reporter: RejectionSink,
    private readonly metrics: MessageCounts,
    private readonly limits: DecodeLimits,
  ) {}

  gps<C>(device: DeviceRef, payload: Uint8Array, format: PayloadFormat, transport: Transport,
    settle: Settle<C> | null, ctx: C, tag: number): IntakeResult {
    this.metrics.messages[transport]++;
    const result = decodeGps(payload, format, this.limits, Date.now());
    if (!result.ok) {
      this.reporter.reject(device, result.reason, 1, { transport });
      return { stored: false, accepted: 0, rejected: [], reason: result.reason };
    }
    for (const r of result.rejected) this.reporter.reject(device, r.reason, 1, { transport, index: r.index });
    if (result.fixes.length === 0) return { stored: false, accepted: 0, rejected: result.rejected };
    this.batcher.addFixes(device, result.fixes, settle, ctx, tag);
    return { stored: true, accepted: result.fixes.length, rejected: result.rejected };
  }

  punch<C>(device: DeviceRef, payload: Uint8Array, format: PayloadFormat, transport: Transport,
    settle: Settle<C> | null, ctx: C, tag: number): IntakeResult {
    this.metrics.messages[transport]++;
    const result = decodePunch(payload, format, this.limits, Date.now());
    if (!result.ok) {
      this.reporter.reject(device, result.reason, 1, { transport });
      return { stored: false, accepted: 0, rejected: [], reason: result.reason };
    }
    this.batcher.addPunch(device, result.punch, settle, ctx, tag);
    return { stored: true, accepted: 1, rejected: [] };
  }

  reportUnauthorized(device: DeviceRef, topic: string): void {
    this.reporter.reject(device, 'unauthorized_topic', 1, { topic });
  }
}
