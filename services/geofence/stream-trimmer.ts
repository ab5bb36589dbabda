import type { StreamBus } from '../shared/bus.js';
import type { Logger } from '../shared/log.js';

/**
 * Keeps the positions shards and the punches stream short by dropping what the geofence group has
 * evaluated and acknowledged. Ingest's `MAXLEN` on those streams is only a memory backstop: trimming by
 * the group's progress means entries are never dropped before the evaluators have seen them, however
 * long they were away. Every geofence worker runs one; trimming is idempotent.
 */
export class StreamTrimmer {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly bus: StreamBus,
    private readonly streams: () => string[],
    private readonly group: string,
    private readonly log: Logger,
    private readonly everyMs = 5_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running = this.trim();
    }, this.everyMs);
    this.timer.unref();
  }

  async trim(): Promise<void> {
    for (const stream of this.streams()) {
      await this.bus.trimConsumed(stream, this.group).catch((err: unknown) => this.log.warn({ err, stream }, 'stream trim failed'));
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
