import type { Coordination } from './coordination.js';

/**
 * Coordination inside one process (the one-process start): the same leases, heartbeats and
 * lease-fenced hashes as on Redis, with expiry by the clock. Every call is synchronous underneath,
 * so "check the lease, then write" is atomic as the Lua script is on Redis.
 */
export class InProcessCoordination implements Coordination {
  private readonly members = new Map<string, Map<string, number>>();
  private readonly leases = new Map<string, { owner: string; expiresAtMs: number }>();
  private readonly hashes = new Map<string, Map<string, string>>();

  async heartbeat(set: string, member: string, nowMs: number, ttlMs: number): Promise<number> {
    let members = this.members.get(set);
    if (!members) this.members.set(set, (members = new Map()));
    members.set(member, nowMs);
    for (const [other, seenMs] of members) if (seenMs <= nowMs - ttlMs) members.delete(other);
    return members.size;
  }

  async leave(set: string, member: string): Promise<void> {
    this.members.get(set)?.delete(member);
  }

  async acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    if (this.holder(key) !== null) return false;
    this.leases.set(key, { owner, expiresAtMs: Date.now() + ttlMs });
    return true;
  }

  async renewLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    if (this.holder(key) !== owner) return false;
    this.leases.set(key, { owner, expiresAtMs: Date.now() + ttlMs });
    return true;
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    if (this.holder(key) === owner) this.leases.delete(key);
  }

  async readHash(key: string): Promise<Map<string, string>> {
    return new Map(this.hashes.get(key));
  }

  async writeHashIfLeaseHeld(leaseKey: string, owner: string, key: string, fields: Map<string, string>): Promise<boolean> {
    if (fields.size === 0) return true;
    if (this.holder(leaseKey) !== owner) return false;
    let hash = this.hashes.get(key);
    if (!hash) this.hashes.set(key, (hash = new Map()));
    for (const [field, value] of fields) hash.set(field, value);
    return true;
  }

  async ping(): Promise<void> {}

  /** Nothing to let go of: the state belongs to the process. */
  async close(): Promise<void> {}

  private holder(key: string): string | null {
    const lease = this.leases.get(key);
    if (!lease) return null;
    if (lease.expiresAtMs <= Date.now()) {
      this.leases.delete(key);
      return null;
    }
    return lease.owner;
  }
}
