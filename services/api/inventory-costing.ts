import { divideHalfUp } from './money.js';

/**
 * Weighted-average cost, exactly (docs/design.md, "Inventory"). An item keeps its stock's total value
 * as an integer (minor units) beside its quantity, across all warehouses; the average is derived:
 *
 *   receive q at c:   quantity += q, value += q × c
 *   issue q:          the value leaving is value × q / quantity, rounded half-up — all of it when the
 *                     last units leave, so value reaches exactly 0 together with the quantity
 *   transfer:         quantity and value unchanged (the average is the item's, not the warehouse's)
 *   average_cost      = value / quantity rounded half-up; when the stock runs out it keeps the last
 *                       average, so the item still shows what its parts cost
 *
 * Rounding moves no value: what one issue rounds up, the units left carry less of, so the sum of
 * every movement's value is always the stock's value.
 */

export interface Valuation {
  quantity: bigint;
  value: bigint;
  averageCost: bigint;
}

export interface Valued extends Valuation {
  /** The value that entered (+) or left (−) with the movement. */
  delta: bigint;
  /** The cost per unit the movement is booked at. */
  unitCost: bigint;
}

/** Units entering stock at `unitCost` each (a receipt, or a positive adjustment). */
export function addUnits(stock: Valuation, quantity: bigint, unitCost: bigint): Valued {
  const delta = quantity * unitCost;
  const next = { quantity: stock.quantity + quantity, value: stock.value + delta };
  return { ...next, averageCost: averageOf(next, stock.averageCost), delta, unitCost };
}

/** Units leaving stock (consumed, or a negative adjustment) at their share of the stock's value. */
export function removeUnits(stock: Valuation, quantity: bigint): Valued {
  if (quantity > stock.quantity) throw new RangeError('more units than in stock');
  const leaving = quantity === stock.quantity ? stock.value : divideHalfUp(stock.value * quantity, stock.quantity);
  const next = { quantity: stock.quantity - quantity, value: stock.value - leaving };
  return { ...next, averageCost: averageOf(next, stock.averageCost), delta: -leaving, unitCost: divideHalfUp(leaving, quantity) };
}

const averageOf = (stock: { quantity: bigint; value: bigint }, previous: bigint): bigint =>
  stock.quantity > 0n ? divideHalfUp(stock.value, stock.quantity) : previous;
