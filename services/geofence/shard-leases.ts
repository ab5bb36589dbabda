import type { Coordination } from '../shared/coordination.js';
import type { Logger } from '../shared/log.js';

export interface ShardLeaseOptions {
  /** Key prefix (the deployment's REDIS_PREFIX). */
  prefix: string;
  workerId: string;
  shards: number;
  /** A lease lapses this long after its holder stopped renewing it; renewed every third of it. */
  leaseMs: number;
}

export interface LeaseChanges {
  /** Leases taken in this tick; a shard may also be in `lost` when its lease lapsed and was free again. */
  acquired: number[];
  /** Leases that lapsed or were taken: the shard's state in memory is no longer ours. */
  lost: number[];
  /** Shards held beyond this worker's fair share: finish the batch, then `release` them. */
  surplus: number[];
}

/**
 * One owner per `positions:{n}` shard at a time, through leases (Redis `SET NX PX`, or in-process;
 * see Coordination), renewed by the holder. Workers announce themselves in a heartbeat set; each aims at ceil(shards / live workers)
 * leases, takes free ones up to that and gives back the surplus, so load spreads when a worker
 * joins and a dead worker's shards are taken over once its leases lapse.
 */
export class ShardLeases {
  private readonly held = new Set<number>();
  private readonly expiresAt = new Map<number, number>();
  private readonly workersKey: string;
  private readonly leaseMs: number;

  constructor(private readonly coordination: Coordination, private readonly options: ShardLeaseOptions, private readonly log: Logger) {
    this.workersKey = `${options.prefix}geofence:workers`;
    this.leaseMs = options.leaseMs;
  }

  leaseKey(shard: number): string {
    return `${this.options.prefix}geofence:lease:${shard}`;
  }

  /** Shards whose lease is held and not about to lapse (a margin guards against clock drift and slow renewals). */
  isHeld(shard: number): boolean {
    return this.held.has(shard) && (this.expiresAt.get(shard) ?? 0) - Date.now() > this.leaseMs / 4;
  }

  heldShards(): number[] {
    return [...this.held].sort((a, b) => a - b);
  }

  /** Heartbeat, renew, then take or give back leases toward the fair share. */
  async tick(): Promise<LeaseChanges> {
    const now = Date.now();
    const { workerId, shards } = this.options;
    const live = await this.coordination.heartbeat(this.workersKey, workerId, now, this.leaseMs);
    const lost: number[] = [];
    const renewals = await Promise.all(
      [...this.held].map(async (shard) => [shard, await this.coordination.renewLease(this.leaseKey(shard), workerId, this.leaseMs)] as const),
    );
    for (const [shard, renewed] of renewals) {
      if (renewed) this.expiresAt.set(shard, now + this.leaseMs);
      else {
        this.held.delete(shard);
        this.expiresAt.delete(shard);
        lost.push(shard);
      }
    }
    const fairShare = Math.ceil(shards / Math.max(1, live));
    const acquired: number[] = [];
    // Start from a worker-specific shard so that workers starting together try different leases first.
    const offset = hashOf(workerId) % shards;
    for (let k = 0; k < shards && this.held.size < fairShare; k++) {
      const shard = (offset + k) % shards;
      if (this.held.has(shard)) continue;
      if (await this.coordination.acquireLease(this.leaseKey(shard), workerId, this.leaseMs)) {
        this.held.add(shard);
        this.expiresAt.set(shard, now + this.leaseMs);
        acquired.push(shard);
      }
    }
    const surplus = this.heldShards().slice(fairShare).filter((s) => !acquired.includes(s));
    if (acquired.length || lost.length) this.log.info({ acquired, lost, held: this.heldShards(), live }, 'shard leases changed');
    return { acquired, lost, surplus };
  }

  async release(shard: number): Promise<void> {
    this.held.delete(shard);
    this.expiresAt.delete(shard);
    await this.coordination.releaseLease(this.leaseKey(shard), this.options.workerId);
  }

  /** Leaves the group: gives back every lease so that the others take over at once. */
  async releaseAll(): Promise<void> {
    await Promise.allSettled(this.heldShards().map((s) => this.release(s)));
    await this.coordination.leave(this.workersKey, this.options.workerId).catch(() => {});
  }
}

function hashOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}
