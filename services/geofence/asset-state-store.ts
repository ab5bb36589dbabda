import type { Redis } from 'ioredis';
import { parseAssetState, serializeAssetState, type AssetState } from './asset-state.js';

// Writes a shard's states only while the caller still holds the shard's lease, so a worker that
// lost its lease (paused, partitioned) can never overwrite the new owner's state.
const SAVE_IF_OWNER = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return 1`;

/** Lua's unpack has a stack limit; fields per call stay well under it. */
const FIELDS_PER_CALL = 1000;

/**
 * Per-asset evaluator state in Redis, one hash per shard (`geofence:state:{n}`), so that whichever
 * worker owns the shard next continues where the last one stopped. The owner loads the hash once
 * when it takes the shard and keeps it in memory; after each read batch it writes the assets that
 * batch touched, in one round trip, before acknowledging the entries.
 */
export class AssetStateStore {
  constructor(private readonly redis: Redis, private readonly prefix: string) {
    redis.defineCommand('fieldopsSaveIfOwner', { numberOfKeys: 2, lua: SAVE_IF_OWNER });
  }

  stateKey(shard: number): string {
    return `${this.prefix}geofence:state:${shard}`;
  }

  async load(shard: number): Promise<Map<string, AssetState>> {
    const states = new Map<string, AssetState>();
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.stateKey(shard), cursor, 'COUNT', 1000);
      for (let i = 0; i < flat.length; i += 2) states.set(flat[i]!, parseAssetState(flat[i + 1]!));
      cursor = next;
    } while (cursor !== '0');
    return states;
  }

  /** Saves the given assets' states if `workerId` holds `leaseKey`; false when it does not (nothing written). */
  async save(shard: number, leaseKey: string, workerId: string, states: Map<string, AssetState>): Promise<boolean> {
    if (states.size === 0) return true;
    const args: string[] = [];
    for (const [key, state] of states) args.push(key, serializeAssetState(state));
    const pipeline = this.redis.pipeline() as unknown as {
      fieldopsSaveIfOwner(...args: string[]): void;
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    for (let i = 0; i < args.length; i += FIELDS_PER_CALL * 2) {
      pipeline.fieldopsSaveIfOwner(leaseKey, this.stateKey(shard), workerId, ...args.slice(i, i + FIELDS_PER_CALL * 2));
    }
    const results = await pipeline.exec();
    if (!results) throw new Error('redis pipeline aborted');
    for (const [err, saved] of results) {
      if (err) throw err;
      if (saved !== 1) return false;
    }
    return true;
  }
}
