/**
 * Token look-ups gathered into one query: every hash asked for while the event loop handles one round of
 * socket reads (a reconnect storm delivers thousands of CONNECTs at once) goes into a single
 * `token_hash = any($1)`, at most `maxPerQuery` hashes and `maxConcurrent` queries at a time, so that the
 * look-ups neither take every pool connection from the commits nor cost a round trip each (docs/design.md,
 * "Device contract": measured 10,000 devices admitted in ≈ 29 s one query each).
 */
export class CredentialLoader<Row> {
  private queue: string[] = [];
  private readonly waiters = new Map<string, { resolve: (row: Row | null) => void; reject: (err: unknown) => void }[]>();
  private running = 0;
  private scheduled = false;

  /** `lookup` returns the rows found for these hashes (hex), each with its hash as `keyOf` reads it. */
  constructor(
    private readonly lookup: (hashes: string[]) => Promise<Row[]>,
    private readonly keyOf: (row: Row) => string,
    private readonly maxPerQuery = 1000,
    private readonly maxConcurrent = 2,
  ) {}

  /** The row of this token hash, or null; rejects when the database cannot answer. */
  load(hash: string): Promise<Row | null> {
    return new Promise((resolve, reject) => {
      const waiting = this.waiters.get(hash);
      if (waiting) {
        waiting.push({ resolve, reject });
        return;
      }
      this.waiters.set(hash, [{ resolve, reject }]);
      this.queue.push(hash);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush); // after this round of reads: their CONNECTs join the same query
      }
    });
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    while (this.running < this.maxConcurrent && this.queue.length > 0) {
      const hashes = this.queue.length <= this.maxPerQuery ? this.queue : this.queue.slice(0, this.maxPerQuery);
      this.queue = hashes === this.queue ? [] : this.queue.slice(this.maxPerQuery);
      this.running++;
      void this.run(hashes).finally(() => {
        this.running--;
        this.flush(); // what queued up meanwhile goes in the next query
      });
    }
  };

  private async run(hashes: string[]): Promise<void> {
    let rows: Row[];
    try {
      rows = await this.lookup(hashes);
    } catch (err) {
      for (const hash of hashes) this.settle(hash, (w) => w.reject(err));
      return;
    }
    const found = new Map(rows.map((row) => [this.keyOf(row), row]));
    for (const hash of hashes) {
      const row = found.get(hash) ?? null;
      this.settle(hash, (w) => w.resolve(row));
    }
  }

  private settle(hash: string, each: (waiter: { resolve: (row: Row | null) => void; reject: (err: unknown) => void }) => void): void {
    const waiting = this.waiters.get(hash);
    this.waiters.delete(hash);
    for (const waiter of waiting ?? []) each(waiter);
  }
}
