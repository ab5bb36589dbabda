import type { Coordination } from '../shared/coordination.js';
import { parseAssetState, serializeAssetState, type AssetState } from './asset-state.js';

/**
 * Per-asset evaluator state, one hash per shard (`geofence:state:{n}`, in Redis or in-process), so
 * that whichever worker owns the shard next continues where the last one stopped. The owner loads the
 * hash once when it takes the shard and keeps it in memory; after each read batch it writes the assets
 * that batch touched, in one round trip, before acknowledging the entries — only while it still holds
 * the shard's lease, so a worker that lost it (paused, partitioned) never overwrites the new owner's state.
 */
export class AssetStateStore {
  constructor(private readonly coordination: Coordination, private readonly prefix: string) {}

  stateKey(shard: number): string {
    return `${this.prefix}geofence:state:${shard}`;
  }

  async load(shard: number): Promise<Map<string, AssetState>> {
    const states = new Map<string, AssetState>();
    for (const [key, text] of await this.coordination.readHash(this.stateKey(shard))) states.set(key, parseAssetState(text));
    return states;
  }

  /** Saves the given assets' states if `workerId` holds `leaseKey`; false when it does not (nothing written). */
  async save(shard: number, leaseKey: string, workerId: string, states: Map<string, AssetState>): Promise<boolean> {
    if (states.size === 0) return true;
    const fields = new Map<string, string>();
    for (const [key, state] of states) fields.set(key, serializeAssetState(state));
    return this.coordination.writeHashIfLeaseHeld(leaseKey, workerId, this.stateKey(shard), fields);
  }
}
