/**
 * PostgreSQL's text form of a `timestamptz` as a Date, read by character codes: pg's own parser
 * (postgres-date) runs three regular expressions per value, and a page of 20 work orders holds about
 * a hundred of them — the largest single cost of serving a list in the API process (docs/design.md,
 * "Cost of a request"). The usual form, `2026-11-30 16:09:13.465123+00` (a four-digit year, an
 * optional fraction, an offset of `±HH` or `±HH:MM`), is read here and gives the same Date; anything
 * else (BC, `infinity`, years past 9999 or before 100, offsets with seconds) goes to `fallback`.
 */
export function timestamptzParser(fallback: (text: string) => unknown): (text: string) => unknown {
  return (text) => {
    const length = text.length;
    if (length < 22 || text.charCodeAt(4) !== DASH || text.charCodeAt(7) !== DASH || text.charCodeAt(10) !== SPACE
      || text.charCodeAt(13) !== COLON || text.charCodeAt(16) !== COLON) return fallback(text);
    const year = digits(text, 0, 4);
    const month = digits(text, 5, 2);
    const day = digits(text, 8, 2);
    const hour = digits(text, 11, 2);
    const minute = digits(text, 14, 2);
    const second = digits(text, 17, 2);
    if (year < 100 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return fallback(text);
    let at = 19;
    let ms = 0;
    if (text.charCodeAt(at) === DOT) {
      let end = at + 1;
      let fraction = 0;
      while (end < length && isDigit(text.charCodeAt(end))) fraction = fraction * 10 + (text.charCodeAt(end++) - 48);
      const count = end - at - 1;
      if (count === 0 || count >= POWERS_OF_TEN.length) return fallback(text);
      // postgres-date's `1000 * parseFloat('.465123')`, so that the Date is the same to the millisecond: the
      // quotient of two exact doubles is rounded once, to the double parseFloat reads, without the slice.
      ms = 1000 * (fraction / POWERS_OF_TEN[count]!);
      at = end;
    }
    const sign = text.charCodeAt(at);
    if (sign !== PLUS && sign !== DASH) return fallback(text);
    const offsetHours = digits(text, at + 1, 2);
    let offsetMinutes = 0;
    if (length === at + 6 && text.charCodeAt(at + 3) === COLON) offsetMinutes = digits(text, at + 4, 2);
    else if (length !== at + 3) return fallback(text);
    if (offsetHours < 0 || offsetMinutes < 0) return fallback(text);
    const offsetMs = (sign === DASH ? -1 : 1) * (offsetHours * 3600 + offsetMinutes * 60) * 1000;
    return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMs);
  };
}

const DASH = 45;
const PLUS = 43;
const SPACE = 32;
const COLON = 58;
const DOT = 46;

const isDigit = (code: number) => code >= 48 && code <= 57;
/** Exact as doubles up to 10^15, as are the fractions' digits below it. */
const POWERS_OF_TEN = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/** The decimal number in `count` characters from `at`; -1 when one of them is not a digit. */
function digits(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const code = text.charCodeAt(i);
    if (!isDigit(code)) return -1;
    value = value * 10 + (code - 48);
  }
  return value;
}
