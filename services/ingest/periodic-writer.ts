/**
 * What ingest gathers in memory and writes off the commit path at most once an interval, one statement per
 * round (device_state, device_rejections). A round that fails hands its work back for the next one.
 */
export abstract class PeriodicWriter<Work> {
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;

  constructor(private readonly intervalMs: number) {}

  start(): void {
    this.timer = setInterval(() => void this.write(), this.intervalMs);
    this.timer.unref();
  }

  /** What was gathered since the last round, taken out of the gathering (null: nothing to write). */
  protected abstract take(): Work | null;
  protected abstract store(work: Work): Promise<void>;
  /** A failed round's work, merged back into what is being gathered. */
  protected abstract giveBack(work: Work, err: unknown): void;

  /** Writes what was gathered since the last round (waits for a round under way instead). */
  write(): Promise<void> {
    if (this.writing) return this.writing;
    const work = this.take();
    if (work === null) return Promise.resolve();
    this.writing = this.store(work)
      .catch((err) => this.giveBack(work, err))
      .finally(() => { this.writing = null; });
    return this.writing;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.writing;
    await this.write();
  }
}
