/** How long an unknown token or a disabled device's token is answered from memory. */
const REFUSED_TTL_MS = 10_000;
const FAILURE_WINDOW_MS = 60_000;
const MAX_ENTRIES = 100_000;

export type CachedRefusal = 'unknown_token' | 'device_disabled';

/**
 * Bad credentials cost no database round trip twice (docs/design.md, "Device contract"): a refused token hash
 * is remembered for a few seconds (a disabled device's until its change notice), and a source (remote
 * address) whose look-ups keep failing gets no further look-ups for the rest of the minute — its devices'
 * CONNECTs are answered "server unavailable" and retried later, while cached credentials still work.
 */
export class AuthRefusals {
  private readonly refused = new Map<string, { reason: CachedRefusal; deviceId: string | null; expiresAt: number }>();
  private readonly failures = new Map<string, { windowStart: number; count: number }>();

  constructor(private readonly maxFailuresPerMinute: number) {}

  /** A refusal remembered for this token hash, if any. */
  cached(hash: string, now = Date.now()): CachedRefusal | null {
    const entry = this.refused.get(hash);
    if (!entry) return null;
    if (entry.expiresAt > now) return entry.reason;
    this.refused.delete(hash);
    return null;
  }

  remember(hash: string, reason: CachedRefusal, deviceId: string | null, now = Date.now()): void {
    if (this.refused.size >= MAX_ENTRIES) this.refused.clear();
    this.refused.set(hash, { reason, deviceId, expiresAt: now + REFUSED_TTL_MS });
  }

  /** Whether this source may cost another look-up. */
  mayLookUp(source: string, now = Date.now()): boolean {
    const entry = this.failures.get(source);
    return !entry || now - entry.windowStart >= FAILURE_WINDOW_MS || entry.count < this.maxFailuresPerMinute;
  }

  /** Counts a look-up from this source that found no usable device. */
  failed(source: string, now = Date.now()): void {
    const entry = this.failures.get(source);
    if (entry && now - entry.windowStart < FAILURE_WINDOW_MS) {
      entry.count++;
      return;
    }
    if (this.failures.size >= MAX_ENTRIES) this.failures.clear();
    this.failures.set(source, { windowStart: now, count: 1 });
  }

  /** A change notice: a disabled device may have been enabled again. */
  forgetDevices(deviceIds: Set<string>): void {
    for (const [hash, entry] of this.refused) if (entry.deviceId !== null && deviceIds.has(entry.deviceId)) this.refused.delete(hash);
  }

  clear(): void {
    this.refused.clear();
  }
}
