import type { Logger } from '../shared/log.js';

/**
 * What every job of services/jobs/ shares (docs/design.md, "Jobs"): its work runs at start and then every
 * `intervalMs`; a failure is logged and tried again at the next tick. The timer never keeps a process alive.
 */
export class IntervalJob {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly work: () => Promise<unknown>,
    private readonly log: Logger,
    private readonly failure: string,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.runOnce(), this.intervalMs);
    this.timer.unref();
    void this.runOnce();
  }

  async runOnce(): Promise<void> {
    await this.work().catch((err: unknown) => this.log.warn({ err }, this.failure));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
