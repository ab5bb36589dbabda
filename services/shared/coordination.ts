/**
 * What processes coordinate through besides the streams: leases, a membership set, and hashes
 * written only by a lease's holder (the geofence role's shard ownership and per-shard asset state).
 * Two implementations, chosen with the stream bus (runtime.ts): Redis when several processes share
 * the work, in-process when one process holds every role (docs/design.md, "Two commands: embedded
 * PostgreSQL and the in-process bus").
 */
export interface Coordination {
  /** Records `member` as alive at `nowMs` in `set`, forgets members silent for `ttlMs`; returns how many are alive. */
  heartbeat(set: string, member: string, nowMs: number, ttlMs: number): Promise<number>;
  leave(set: string, member: string): Promise<void>;
  /** Takes `key` for `owner` for `ttlMs` when nobody holds it; true when taken. */
  acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Extends a lease `owner` still holds; false when it lapsed or is someone else's now. */
  renewLease(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Gives a lease back if `owner` holds it. */
  releaseLease(key: string, owner: string): Promise<void>;
  /** Every field of a hash (empty when it does not exist). */
  readHash(key: string): Promise<Map<string, string>>;
  /**
   * Sets fields of `key` only while `owner` holds `leaseKey`, atomically with that check, so a
   * holder whose lease lapsed (paused, partitioned) never overwrites the next holder's writes.
   * False when the lease is not held (then nothing was written).
   */
  writeHashIfLeaseHeld(leaseKey: string, owner: string, key: string, fields: Map<string, string>): Promise<boolean>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
