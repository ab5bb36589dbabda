import type { StreamBatch, StreamBus, StreamEntry } from '../shared/bus.js';
import type { Logger } from '../shared/log.js';
import { decodePositions, warnMalformed, type OnMalformed, type PositionRecord, type StreamNames } from '../shared/contracts/stream-codec.js';
import { compareStreamIds } from '../shared/stream-ids.js';

/** Where the reader hands what it reads. */
export interface LiveSink {
  /** False when no socket is connected: positions are then skipped unparsed. */
  hasSockets(): boolean;
  dispatchPositions(records: PositionRecord[]): void;
  dispatchEvents(tenantId: string, entries: StreamEntry[]): void;
}

export interface StreamReaderOptions {
  /** A bus of its own: a blocking read holds its connection, and other roles of the process block on theirs. */
  createBus(): StreamBus;
  /** Non-blocking lookups (the newest id of a stream). */
  lookups: StreamBus;
  streams: StreamNames;
  log: Logger;
  blockMs?: number;
  count?: number;
}

/**
 * The one blocking reader of a realtime process: every position shard, plus `events:{tenant}` of the
 * tenants that have sockets here. Each cursor starts at the stream's newest id when it is added, so
 * nothing appended afterwards is missed; a tenant added while a read blocks joins the next read (at
 * most `blockMs` later, still from its cursor).
 */
export class LiveStreamReader {
  private readonly positionCursors: Record<string, string> = {};
  private readonly eventCursors = new Map<string, string>();
  private readonly tenantOfStream = new Map<string, string>();
  private readonly followed = new Map<string, Promise<void>>();
  private readonly blockMs: number;
  private readonly count: number;
  private bus: StreamBus;
  private loop: Promise<void> | null = null;
  private closing = false;
  private lastErrorLogMs = 0;
  private readonly onMalformed: OnMalformed;

  constructor(private readonly options: StreamReaderOptions) {
    this.blockMs = options.blockMs ?? 200;
    this.count = options.count ?? 1000;
    this.bus = options.createBus();
    this.onMalformed = warnMalformed(options.log);
  }

  async start(sink: LiveSink): Promise<void> {
    const shards = this.options.streams.allPositionShards();
    const lastIds = await Promise.all(shards.map((s) => this.options.lookups.lastId(s)));
    shards.forEach((shard, i) => (this.positionCursors[shard] = lastIds[i]!));
    this.loop = this.run(sink);
  }

  /** Starts reading the tenant's events from now on; resolves once its cursor is set. */
  follow(tenantId: string): Promise<void> {
    let ready = this.followed.get(tenantId);
    if (!ready) {
      const stream = this.options.streams.events(tenantId);
      ready = this.options.lookups.lastId(stream).then((lastId) => {
        if (this.followed.get(tenantId) !== ready) return; // unfollowed meanwhile
        this.eventCursors.set(stream, lastId);
        this.tenantOfStream.set(stream, tenantId);
      });
      ready.catch(() => this.followed.delete(tenantId));
      this.followed.set(tenantId, ready);
    }
    return ready;
  }

  /** The id up to which the tenant's events have been dispatched (null when not followed yet). */
  cursorOf(tenantId: string): string | null {
    return this.eventCursors.get(this.options.streams.events(tenantId)) ?? null;
  }

  unfollow(tenantId: string): void {
    const stream = this.options.streams.events(tenantId);
    this.followed.delete(tenantId);
    this.eventCursors.delete(stream);
    this.tenantOfStream.delete(stream);
  }

  private async run(sink: LiveSink): Promise<void> {
    while (!this.closing) {
      const cursors: Record<string, string> = { ...this.positionCursors };
      for (const [stream, cursor] of this.eventCursors) cursors[stream] = cursor;
      let batches: StreamBatch[];
      try {
        batches = await this.readWithWatchdog(cursors);
      } catch (err) {
        if (this.closing) break;
        const now = Date.now();
        if (now - this.lastErrorLogMs > 10_000) {
          this.lastErrorLogMs = now;
          this.options.log.warn({ err }, 'live stream read failed; retrying');
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      for (const batch of batches) this.dispatch(sink, batch);
    }
  }

  /**
   * A blocking read that does not come back well after its block time means a dead connection that
   * TCP has not noticed: the bus is replaced and the read issued again from the same cursors.
   */
  private async readWithWatchdog(cursors: Record<string, string>): Promise<StreamBatch[]> {
    const bus = this.bus;
    let timer: NodeJS.Timeout | undefined;
    const watchdog = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (this.bus === bus && !this.closing) {
          this.bus = this.options.createBus();
          void bus.close();
        }
        reject(new Error(`blocking read did not return within ${this.blockMs + 10_000} ms`));
      }, this.blockMs + 10_000);
    });
    try {
      return await Promise.race([bus.read(cursors, { blockMs: this.blockMs, count: this.count }), watchdog]);
    } finally {
      clearTimeout(timer);
    }
  }

  private dispatch(sink: LiveSink, { stream, entries }: StreamBatch): void {
    if (entries.length === 0) return;
    const lastId = entries[entries.length - 1]!.id;
    if (stream in this.positionCursors) {
      this.positionCursors[stream] = lastId;
      if (sink.hasSockets()) sink.dispatchPositions(decodePositions(entries, this.onMalformed));
      return;
    }
    const tenantId = this.tenantOfStream.get(stream);
    const cursor = this.eventCursors.get(stream);
    if (!tenantId || !cursor) return; // unfollowed while the read was blocking
    // A tenant unfollowed and followed again during the read has a newer cursor: skip what it already covers.
    const fresh = entries.filter((e) => compareStreamIds(e.id, cursor) > 0);
    if (fresh.length === 0) return;
    this.eventCursors.set(stream, fresh[fresh.length - 1]!.id);
    sink.dispatchEvents(tenantId, fresh);
  }


  /** Idempotent: stops the loop (the pending read is cut by closing its connection). */
  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      await this.bus.close();
    }
    await this.loop;
  }
}
