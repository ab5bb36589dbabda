/**
 * Exact money arithmetic (docs/design.md, "Quotes" and "Inventory"): amounts are integer minor units
 * held as BigInt while computed, never floats.
 */

/** `numerator / denominator` rounded half-up (ties away from zero), for a non-negative numerator and a positive denominator. */
export function divideHalfUp(numerator: bigint, denominator: bigint): bigint {
  return (numerator * 2n + denominator) / (denominator * 2n);
}
