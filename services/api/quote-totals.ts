import { badRequest, type Issue } from '../shared/contracts/errors.js';
import { divideHalfUp } from './money.js';

/**
 * Quote amounts (docs/design.md, "Quotes"), exact: money is integer minor units and no float ever
 * holds an amount. A quantity (up to 3 decimals) and a tax rate in percent (up to 3 decimals) are read
 * from the decimal text of the JSON number as scaled integers, and every product is a BigInt.
 *
 * Rounding happens in two places per line, half-up (ties away from zero, as on paper invoices), and
 * nowhere else:
 *   line subtotal = round(quantity × unit_price)
 *   line tax      = round(line subtotal × tax_rate / 100)
 * The quote's `subtotal` and `tax_total` are the sums of the rounded line amounts, and `total` is their
 * sum, so every figure printed on a quote adds up to the total exactly.
 */

export type LineKind = 'part' | 'labour';

export interface QuoteLineInput {
  kind: LineKind;
  description: string;
  quantity: number;
  unit_price: number;
  tax_rate: number;
}

export interface QuoteLine extends QuoteLineInput {
  subtotal: number;
  tax: number;
  total: number;
}

export interface QuoteTotals {
  items: QuoteLine[];
  subtotal: number;
  tax_total: number;
  total: number;
}

export const QUANTITY_DECIMALS = 3;
export const TAX_RATE_DECIMALS = 3;
export const MAX_QUANTITY = 1_000_000;
/** 10^13 minor units: a hundred billion in a currency with cents. */
export const MAX_UNIT_PRICE = 10_000_000_000_000;

const QUANTITY_SCALE = 10n ** BigInt(QUANTITY_DECIMALS);
const RATE_SCALE = 10n ** BigInt(TAX_RATE_DECIMALS);
const MAX_AMOUNT = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A JSON number as an integer scaled by 10^decimals, read from its shortest decimal text (what the
 * client wrote: `0.1` is 1/10, not the binary double nearest to it); null when it has more decimals.
 */
export function scaledDecimal(value: number, decimals: number): bigint | null {
  if (!Number.isFinite(value)) return null;
  const text = Math.abs(value).toString();
  // Exponent notation appears for |x| < 1e-6 (more decimals than we take) and ≥ 1e21 (past our caps).
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) return null;
  const fraction = match[2] ?? '';
  if (fraction.length > decimals) return null;
  const scaled = BigInt(match[1]! + fraction.padEnd(decimals, '0'));
  return value < 0 ? -scaled : scaled;
}

/** Computes every line and the totals; a line the caps or the decimals refuse is a 400 naming it. */
export function computeQuoteTotals(lines: readonly QuoteLineInput[]): QuoteTotals {
  const issues: Issue[] = [];
  const items: QuoteLine[] = [];
  let subtotal = 0n;
  let taxTotal = 0n;
  lines.forEach((line, index) => {
    const quantity = scaledDecimal(line.quantity, QUANTITY_DECIMALS);
    const rate = scaledDecimal(line.tax_rate, TAX_RATE_DECIMALS);
    if (quantity === null) issues.push({ path: `items.${index}.quantity`, message: `must have at most ${QUANTITY_DECIMALS} decimals` });
    if (rate === null) issues.push({ path: `items.${index}.tax_rate`, message: `must have at most ${TAX_RATE_DECIMALS} decimals` });
    if (quantity === null || rate === null) return;
    const lineSubtotal = divideHalfUp(quantity * BigInt(line.unit_price), QUANTITY_SCALE);
    const lineTax = divideHalfUp(lineSubtotal * rate, 100n * RATE_SCALE);
    subtotal += lineSubtotal;
    taxTotal += lineTax;
    items.push({
      kind: line.kind,
      description: line.description,
      quantity: line.quantity,
      unit_price: line.unit_price,
      tax_rate: line.tax_rate,
      subtotal: Number(lineSubtotal),
      tax: Number(lineTax),
      total: Number(lineSubtotal + lineTax),
    });
  });
  if (issues.length) throw badRequest('a line item is not valid', issues);
  const total = subtotal + taxTotal;
  if (total > MAX_AMOUNT) {
    throw badRequest('the quote total is too large', [{ path: 'items', message: `the total must be at most ${Number.MAX_SAFE_INTEGER} minor units` }]);
  }
  return { items, subtotal: Number(subtotal), tax_total: Number(taxTotal), total: Number(total) };
}
