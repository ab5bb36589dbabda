/**
 * What the evaluator remembers per asset (or per device when it has no asset): the newest fix it
 * evaluated, the fences it is confirmed inside, and for fences where recent fixes disagree with that,
 * how many consecutive fixes did. Small, so that a shard's assets fit in memory and in one Redis hash.
 */
export interface AssetState {
  lastTsMs: number;
  inside: Set<string>;
  /** Fence id → consecutive fixes seen on the other side of the confirmed state. */
  pending: Map<string, number>;
}

export const newAssetState = (): AssetState => ({ lastTsMs: -Infinity, inside: new Set(), pending: new Map() });

/** Key of an asset's state: by asset when linked, else by device (docs/design.md, "Device contract"). */
export const assetKey = (assetId: string | null, deviceId: string): string => (assetId ? `a:${assetId}` : `d:${deviceId}`);

interface StoredState {
  t: number;
  i?: string[];
  p?: [string, number][];
}

export function serializeAssetState(state: AssetState): string {
  const stored: StoredState = { t: state.lastTsMs };
  if (state.inside.size) stored.i = [...state.inside];
  if (state.pending.size) stored.p = [...state.pending];
  return JSON.stringify(stored);
}

export function parseAssetState(text: string): AssetState {
  const stored = JSON.parse(text) as StoredState;
  return {
    lastTsMs: typeof stored.t === 'number' ? stored.t : -Infinity,
    inside: new Set(stored.i ?? []),
    pending: new Map(stored.p ?? []),
  };
}
