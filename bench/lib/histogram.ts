/** Latency percentiles and the largest value, in milliseconds. */
export interface LatencySummary {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * Latency histogram in microseconds: 10 µs buckets up to 100 ms, then 1 ms buckets up to 10 s. Generators send
 * theirs to the parent, which adds them up before reading percentiles.
 */
const FINE_BUCKETS = 10_000;
const COARSE_BUCKETS = 9_900;

export class Histogram {
  readonly counts: Uint32Array;

  constructor(counts?: number[]) {
    this.counts = new Uint32Array(FINE_BUCKETS + COARSE_BUCKETS);
    if (counts) this.counts.set(counts);
  }

  record(us: number): void {
    const bucket = us < 100_000 ? Math.floor(us / 10) : FINE_BUCKETS + Math.min(COARSE_BUCKETS - 1, Math.floor((us - 100_000) / 1000));
    this.counts[Math.max(0, bucket)]!++;
  }

  add(other: Histogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
  }

  get total(): number {
    let n = 0;
    for (const c of this.counts) n += c;
    return n;
  }

  /** The upper edge of the bucket holding the q-quantile, in milliseconds. */
  percentileMs(q: number): number {
    const target = Math.ceil(this.total * q);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= target && target > 0) return upperEdgeMs(i);
    }
    return NaN;
  }

  /** The upper edge of the highest bucket holding a value, in milliseconds; NaN when empty. */
  maxMs(): number {
    for (let i = this.counts.length - 1; i >= 0; i--) {
      if (this.counts[i]! > 0) return upperEdgeMs(i);
    }
    return NaN;
  }

  /** The four figures every bench table prints. */
  summary(): LatencySummary {
    return { p50Ms: this.percentileMs(0.5), p90Ms: this.percentileMs(0.9), p99Ms: this.percentileMs(0.99), maxMs: this.maxMs() };
  }

  /** A histogram of latencies already in milliseconds (sampled sockets, rows read back from the database). */
  static ofMs(values: Iterable<number>): Histogram {
    const h = new Histogram();
    for (const ms of values) h.record(ms * 1000);
    return h;
  }

  toJSON(): number[] {
    return Array.from(this.counts);
  }
}

function upperEdgeMs(bucket: number): number {
  return bucket < FINE_BUCKETS ? ((bucket + 1) * 10) / 1000 : 100 + (bucket - FINE_BUCKETS + 1);
}
