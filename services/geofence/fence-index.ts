import Flatbush from 'flatbush';
import { degreesAround } from '../shared/geofence/geo-math.js';
import type { CompiledFence } from '../shared/geofence/fence-shapes.js';

/**
 * One tenant's fences in a static R-tree (flatbush) over their bounding boxes, rebuilt whenever a
 * fence changes. Candidates come from the tree; containment is then decided per fence, exactly.
 */
export class FenceIndex {
  readonly byId: ReadonlyMap<string, CompiledFence>;
  private readonly fences: CompiledFence[];
  private readonly tree: Flatbush | null;
  private readonly sites: CompiledFence[];
  private readonly siteTree: Flatbush | null;

  constructor(fences: CompiledFence[]) {
    this.fences = fences;
    this.byId = new Map(fences.map((f) => [f.id, f]));
    this.tree = buildTree(fences);
    this.sites = fences.filter((f) => f.kind === 'site');
    this.siteTree = buildTree(this.sites);
  }

  static readonly empty = new FenceIndex([]);

  get size(): number {
    return this.fences.length;
  }

  /**
   * Fences whose box, grown by the fix's accuracy, holds the point. A fence not returned is farther
   * than the accuracy from the point: certainly outside.
   */
  candidates(lon: number, lat: number, accuracyM: number): CompiledFence[] {
    return search(this.tree, this.fences, lon, lat, accuracyM);
  }

  siteCandidates(lon: number, lat: number, accuracyM: number): CompiledFence[] {
    return search(this.siteTree, this.sites, lon, lat, accuracyM);
  }

  /** The `k` sites nearest by bounding box; the caller measures exact distances among them. */
  nearestSites(lon: number, lat: number, k: number): CompiledFence[] {
    if (!this.siteTree) return [];
    return this.siteTree.neighbors(lon, lat, k).map((i) => this.sites[i]!);
  }
}

function buildTree(fences: CompiledFence[]): Flatbush | null {
  if (fences.length === 0) return null;
  const tree = new Flatbush(fences.length);
  for (const f of fences) tree.add(f.minLon, f.minLat, f.maxLon, f.maxLat);
  tree.finish();
  return tree;
}

const NONE: CompiledFence[] = [];

function search(tree: Flatbush | null, fences: CompiledFence[], lon: number, lat: number, accuracyM: number): CompiledFence[] {
  if (!tree) return NONE;
  let dLat = 0;
  let dLon = 0;
  if (accuracyM > 0) ({ dLat, dLon } = degreesAround(lat, accuracyM));
  const hits = tree.search(lon - dLon, lat - dLat, lon + dLon, lat + dLat);
  if (hits.length === 0) return NONE;
  return hits.map((i) => fences[i]!);
}
