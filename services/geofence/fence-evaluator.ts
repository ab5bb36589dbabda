import type { PositionRecord } from '../shared/contracts/stream-codec.js';
import type { AssetState } from './asset-state.js';
import type { FenceIndex } from './fence-index.js';
import { Side, type CompiledFence } from '../shared/geofence/fence-shapes.js';

/** A confirmed crossing of one fence's border, dated by the fix that confirmed it. */
export interface Transition {
  fence: CompiledFence;
  entered: boolean;
  fix: PositionRecord;
}

/** Marks the fences already judged for the current fix, without allocating a set per fix. */
let evaluation = 0;

/**
 * Evaluates one fix against a tenant's fences and updates the asset's state in place (pure: no I/O).
 * Hysteresis (docs/design.md, "Geofence evaluation"): a crossing is confirmed by `confirm_fixes` consecutive fixes on the
 * new side; a fix whose accuracy circle straddles the border is no evidence either way, and a fix
 * not newer than the last one evaluated is ignored, so late fixes never create transitions.
 * Returns false when the fix was ignored as out of order.
 */
export function evaluateFix(index: FenceIndex, state: AssetState, fix: PositionRecord, transitions: Transition[]): boolean {
  if (!(fix.ts_ms > state.lastTsMs)) return false;
  state.lastTsMs = fix.ts_ms;
  const accuracyM = fix.accuracy_m !== null && fix.accuracy_m > 0 ? fix.accuracy_m : 0;
  const candidates = index.candidates(fix.lon, fix.lat, accuracyM);
  const stamp = ++evaluation;
  for (const fence of candidates) {
    fence.seenInEvaluation = stamp;
    if (!fence.appliesTo(fix.asset_id, fix.ts_ms)) continue;
    const side = fence.observe(fix.lon, fix.lat, accuracyM);
    if (side !== Side.Uncertain) takeEvidence(state, fence, side === Side.Inside, fix, transitions);
  }
  // Fences the asset is in (or leaning into) that the index did not return: the fix is farther from
  // them than its accuracy, so it is certain evidence of being outside.
  if (state.inside.size) {
    for (const id of state.inside) outsideOf(index, state, id, fix, transitions, stamp);
  }
  if (state.pending.size) {
    for (const id of state.pending.keys()) outsideOf(index, state, id, fix, transitions, stamp);
  }
  return true;
}

function outsideOf(index: FenceIndex, state: AssetState, id: string, fix: PositionRecord, transitions: Transition[], stamp: number): void {
  const fence = index.byId.get(id);
  if (fence?.seenInEvaluation === stamp) return;
  if (!fence) {
    // The fence was deleted: forget it without an event.
    state.inside.delete(id);
    state.pending.delete(id);
    return;
  }
  fence.seenInEvaluation = stamp;
  if (fence.appliesTo(fix.asset_id, fix.ts_ms)) takeEvidence(state, fence, false, fix, transitions);
}

function takeEvidence(state: AssetState, fence: CompiledFence, observedInside: boolean, fix: PositionRecord, transitions: Transition[]): void {
  if (observedInside === state.inside.has(fence.id)) {
    state.pending.delete(fence.id);
    return;
  }
  const count = (state.pending.get(fence.id) ?? 0) + 1;
  if (count < fence.confirmFixes) {
    state.pending.set(fence.id, count);
    return;
  }
  state.pending.delete(fence.id);
  if (observedInside) state.inside.add(fence.id);
  else state.inside.delete(fence.id);
  transitions.push({ fence, entered: observedInside, fix });
}
