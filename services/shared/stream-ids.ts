/**
 * Redis stream ids (`<ms>-<seq>`) compared as numbers. They are decimal strings without leading
 * zeros, so a longer string is a larger number and equal lengths compare lexically.
 */
export interface StreamPosition {
  ms: string;
  seq: string;
}

const STREAM_ID = /^(\d{1,19})(?:-(\d{1,19}))?$/;
const MAX_BIGINT = 9_223_372_036_854_775_807n;

/** Parses a client-supplied id (`ms` alone means `ms-0`); null when it is not a stream id PostgreSQL can hold. */
export function parseStreamId(text: string): StreamPosition | null {
  const match = STREAM_ID.exec(text);
  if (!match) return null;
  const ms = BigInt(match[1]!);
  const seq = BigInt(match[2] ?? '0');
  if (ms > MAX_BIGINT || seq > MAX_BIGINT) return null;
  return { ms: ms.toString(), seq: seq.toString() };
}

export const formatStreamId = ({ ms, seq }: StreamPosition): string => `${ms}-${seq}`;

function compareDecimal(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Negative, zero or positive as `a` is before, equal to or after `b`. Both must be canonical `ms-seq` ids. */
export function compareStreamIds(a: string, b: string): number {
  const dashA = a.indexOf('-');
  const dashB = b.indexOf('-');
  const byMs = compareDecimal(a.slice(0, dashA), b.slice(0, dashB));
  return byMs !== 0 ? byMs : compareDecimal(a.slice(dashA + 1), b.slice(dashB + 1));
}

/**
 * An id after every entry stamped before millisecond `ms`, and before every one stamped from it on: a read
 * after it takes those. (No millisecond holds 2^53 entries, and the in-process bus keeps ids as numbers.)
 */
export const streamIdBefore = (ms: number): string => (ms > 0 ? `${ms - 1}-${Number.MAX_SAFE_INTEGER}` : '0-0');
