import { describe, expect, it } from 'vitest';
import { checkAnswers, takeDataUrlPhotos, type TemplateItem } from '../../services/api/inspection-answers.js';
import { addUnits, removeUnits } from '../../services/api/inventory-costing.js';
import { divideHalfUp } from '../../services/api/money.js';
import { formatMoney } from '../../services/api/quote-mail.js';
import { effectiveStage, nextStage } from '../../services/api/quote-stages.js';
import { computeQuoteTotals, scaledDecimal } from '../../services/api/quote-totals.js';

/** The pure rules behind quotes, stock valuation and inspections, on the awkward cases. */
describe('money arithmetic', () => {
  it('rounds half-up, exactly', () => {
    expect([divideHalfUp(5n, 10n), divideHalfUp(4n, 10n), divideHalfUp(15n, 10n), divideHalfUp(25n, 10n), divideHalfUp(0n, 7n)]).toEqual([1n, 0n, 2n, 3n, 0n]);
    expect(divideHalfUp(10n ** 30n + 1n, 2n)).toBe(5n * 10n ** 29n + 1n);
  });

  it('reads a JSON number as the decimal the client wrote', () => {
    expect(scaledDecimal(0.1, 3)).toBe(100n);
    expect(scaledDecimal(1.005, 3)).toBe(1005n);
    expect(scaledDecimal(999_999.999, 3)).toBe(999_999_999n);
    expect(scaledDecimal(7, 3)).toBe(7000n);
    expect(scaledDecimal(0.0001, 3)).toBeNull();
    expect(scaledDecimal(1e-7, 3)).toBeNull();
    expect(scaledDecimal(1e21, 3)).toBeNull();
  });

  it('quote lines round per line; the totals are the sums of the rounded lines', () => {
    // Three lines of 1/3 cent of tax each: per-line rounding gives 0 each, never a phantom cent.
    const thirds = computeQuoteTotals(Array.from({ length: 3 }, () => ({ kind: 'part' as const, description: 'x', quantity: 1, unit_price: 1, tax_rate: 33.333 })));
    expect(thirds).toMatchObject({ subtotal: 3, tax_total: 0, total: 3 });
    // 0.1 + 0.2 in floats is 0.30000000000000004; here 0.3 × 10 = 3 exactly.
    expect(computeQuoteTotals([{ kind: 'labour', description: 'x', quantity: 0.3, unit_price: 10, tax_rate: 0 }]).total).toBe(3);
    expect(formatMoney(123456, 'EUR')).toBe('EUR 1,234.56');
    expect(formatMoney(1234, 'JPY')).toBe('JPY 1,234');
    expect(formatMoney(1234, 'KWD')).toBe('KWD 1.234');
  });
});

describe('quote stages', () => {
  it('allow only the moves of the pipeline', () => {
    expect(nextStage('send', 'draft')).toBe('sent');
    expect(nextStage('accept', 'viewed')).toBe('accepted');
    expect(nextStage('view', 'viewed')).toBe('viewed');
    for (const [action, stage] of [['accept', 'draft'], ['send', 'sent'], ['reject', 'accepted'], ['view', 'draft'], ['edit', 'sent'], ['convert', 'sent']] as const) {
      expect(() => nextStage(action, stage), `${action} from ${stage}`).toThrow(/cannot be/);
    }
  });

  it('an open quote is expired from its date on; others keep their stage', () => {
    const now = new Date('2030-01-01T00:00:00Z');
    expect(effectiveStage('sent', new Date('2029-12-31T23:59:59Z'), now)).toBe('expired');
    expect(effectiveStage('viewed', now, now)).toBe('expired');
    expect(effectiveStage('sent', new Date('2030-01-01T00:00:01Z'), now)).toBe('sent');
    expect(effectiveStage('draft', new Date('2000-01-01T00:00:00Z'), now)).toBe('draft');
    expect(effectiveStage('accepted', new Date('2000-01-01T00:00:00Z'), now)).toBe('accepted');
    expect(effectiveStage('sent', null, now)).toBe('sent');
  });
});

describe('weighted-average cost', () => {
  it('keeps value and quantity together; the last unit takes what is left', () => {
    let stock = { quantity: 0n, value: 0n, averageCost: 0n };
    stock = addUnits(stock, 3n, 100n);
    stock = addUnits(stock, 1n, 101n);
    expect(stock).toMatchObject({ quantity: 4n, value: 401n, averageCost: 100n });
    const one = removeUnits(stock, 1n);
    expect(one).toMatchObject({ quantity: 3n, value: 301n, delta: -100n, averageCost: 100n });
    const rest = removeUnits(one, 3n);
    expect(rest).toMatchObject({ quantity: 0n, value: 0n, delta: -301n, unitCost: 100n, averageCost: 100n });
    expect(() => removeUnits(rest, 1n)).toThrow(RangeError);
  });

  it('never lets value go negative or drift, over many uneven issues', () => {
    let stock = addUnits({ quantity: 0n, value: 0n, averageCost: 0n }, 1000n, 7n);
    stock = addUnits(stock, 333n, 13n);
    let issued = 0n;
    for (const q of [1n, 7n, 333n, 2n, 500n, 1n, 100n]) {
      const next = removeUnits(stock, q);
      issued -= next.delta;
      expect(next.value).toBeGreaterThanOrEqual(0n);
      stock = next;
    }
    const last = removeUnits(stock, stock.quantity);
    issued -= last.delta;
    expect(last.value).toBe(0n);
    expect(issued).toBe(1000n * 7n + 333n * 13n);
  });
});

describe('inspection answers', () => {
  const items: TemplateItem[] = [
    { key: 'ok', label: 'OK', type: 'check', required: true },
    { key: 'n', label: 'N', type: 'number', required: false },
    { key: 'p', label: 'P', type: 'photo', required: true },
  ];

  it('take photos out of the answers and check the rest by type', () => {
    const { answers, photos } = takeDataUrlPhotos({ ok: true, p: ['data:image/png;base64,AA==', 'data:image/png;base64,AA=='], n: 'data-ish text' });
    expect(answers).toEqual({ ok: true, n: 'data-ish text' });
    expect(photos.get('p')).toHaveLength(2);
    expect(checkAnswers(items, { ok: false }, new Map([['p', ['id-1']]]))).toEqual({ ok: false, p: ['id-1'] });
    expect(() => checkAnswers(items, { ok: true, n: Number.NaN }, new Map([['p', ['id-1']]]))).toThrow(/do not fit/);
    expect(() => checkAnswers(items, { ok: true }, new Map())).toThrow(/do not fit/);
  });
});
