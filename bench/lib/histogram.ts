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
      if (seen >= target && target > 0) return i < FINE_BUCKETS ? ((i + 1) * 10) / 1000 : 100 + (i - FINE_BUCKETS + 1);
    }
    return NaN;
  }

  toJSON(): number[] {
    return Array.from(this.counts);
  }
}
