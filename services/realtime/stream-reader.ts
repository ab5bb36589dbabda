import type { StreamBatch, StreamBus, StreamEntry } from '../shared/bus.js';
import type { Logger } from '../shared/log.js';
import { decodePositions, warnMalformed, type OnMalformed, type PositionRecord, type StreamNames } from '../shared/contracts/stream-codec.js';
import { compareStreamIds, streamIdBefore } from '../shared/stream-ids.js';

const CLOCK_SAMPLE_MS = 60_000;

/** Where the reader hands what it reads. */
export interface LiveSink {
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
 * The one blocking reader of a realtime process: every position shard while a socket here subscribes to
 * positions, plus `events:{tenant}` of the tenants that have sockets here. An events cursor starts at the
 * stream's newest id when the tenant is followed (before its first socket opens), the position cursors at the
 * moment positions are wanted (`wantPositions`), so nothing appended afterwards is missed; a stream added while a read blocks
 * joins the next read (at most `blockMs` later, still from its cursor). Position shards nobody here wants are
 * not read at all: at 10,000 fixes/s, fetching and parsing them was most of this process's work for
 * dispatchers that follow events only (docs/design.md, "Live fan-out").
 */
export class LiveStreamReader {
  private positionCursors: Record<string, string> = {};
  private positionsWanted = false;
  /** The bus's clock minus this host's, in ms: position cursors are set by the bus's clock. */
  private clockOffsetMs = 0;
  private clockTimer: NodeJS.Timeout | null = null;
  private wakeIdle: (() => void) | null = null;
  /** A blocking read without the position shards is in flight (`interruptRead` cuts it once they are wanted). */
  private readingWithoutPositions = false;
  private interrupted = false;
  private cutRead: (() => void) | null = null;
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

  /** Starts the loop; the clock is sampled beside it (until the first sample, the hosts' clocks are taken to agree). */
  start(sink: LiveSink): Promise<void> {
    void this.sampleClock();
    this.clockTimer = setInterval(() => void this.sampleClock(), CLOCK_SAMPLE_MS);
    this.clockTimer.unref();
    this.loop = this.run(sink);
    return Promise.resolve();
  }

  /**
   * Starts (true) or stops (false) reading the position shards. Effective at once: each shard's cursor is
   * set by the bus's clock (as sampled) to take every entry stamped from this millisecond on. A look-up of
   * the shards' newest ids instead would race the appends made while it is in flight, and a fix appended
   * right after the subscription could be missed.
   */
  wantPositions(on: boolean): void {
    if (on === this.positionsWanted) return;
    this.positionsWanted = on;
    if (!on) {
      this.positionCursors = {};
      return;
    }
    const from = streamIdBefore(Date.now() + this.clockOffsetMs);
    const cursors: Record<string, string> = {};
    for (const shard of this.options.streams.allPositionShards()) cursors[shard] = from;
    this.positionCursors = cursors;
    this.wake();
    if (this.readingWithoutPositions) this.interruptRead();
  }

  /**
   * Samples how far the bus's clock is ahead of this host's, from a round trip's midpoint. An offset
   * within the round trip's uncertainty is no offset: the same host's clock (the usual case) reads as 0.
   */
  private async sampleClock(): Promise<void> {
    try {
      const sentMs = Date.now();
      const serverMs = await this.options.lookups.serverTimeMs();
      const receivedMs = Date.now();
      const offsetMs = serverMs - Math.round((sentMs + receivedMs) / 2);
      this.clockOffsetMs = Math.abs(offsetMs) <= (receivedMs - sentMs) / 2 + 1 ? 0 : offsetMs;
    } catch (err) {
      this.options.log.warn({ err }, 'live positions: the bus clock could not be sampled; keeping the last offset');
    }
  }

  /**
   * Cuts the blocking read in flight (by closing its connection), so that the next one, with the cursors
   * just set, starts at once: positions come from the subscription on, not up to `blockMs` later, and
   * in the same read as the events appended after them.
   */
  private interruptRead(): void {
    const bus = this.bus;
    this.bus = this.options.createBus();
    this.interrupted = true;
    this.cutRead?.(); // the old connection's read may well return before it closes
    void bus.close();
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
        this.wake();
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
      if (Object.keys(cursors).length === 0) {
        await this.idle(); // nothing to read: no socket here
        continue;
      }
      let batches: StreamBatch[];
      this.readingWithoutPositions = Object.keys(this.positionCursors).length === 0;
      try {
        batches = await this.readWithWatchdog(cursors);
        this.interrupted = false;
      } catch (err) {
        if (this.closing) break;
        if (this.interrupted) {
          this.interrupted = false;
          continue;
        }
        const now = Date.now();
        if (now - this.lastErrorLogMs > 10_000) {
          this.lastErrorLogMs = now;
          this.options.log.warn({ err }, 'live stream read failed; retrying');
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      } finally {
        this.readingWithoutPositions = false;
      }
      for (const batch of batches) this.dispatch(sink, batch);
    }
  }

  /** Waits for a stream to read (or close), at most `blockMs`. */
  private idle(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.blockMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeIdle = done;
    });
  }

  private wake(): void {
    const wake = this.wakeIdle;
    this.wakeIdle = null;
    wake?.();
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
    const cut = new Promise<never>((_, reject) => {
      this.cutRead = () => reject(new Error('blocking read cut to add the position shards'));
    });
    try {
      return await Promise.race([bus.read(cursors, { blockMs: this.blockMs, count: this.count }), watchdog, cut]);
    } finally {
      this.cutRead = null;
      clearTimeout(timer);
    }
  }

  private dispatch(sink: LiveSink, { stream, entries }: StreamBatch): void {
    if (entries.length === 0) return;
    const lastId = entries[entries.length - 1]!.id;
    const positionCursor = this.positionCursors[stream];
    if (positionCursor !== undefined) {
      // Wanted again during the read: its cursors are newer than what the read started from.
      const fresh = compareStreamIds(entries[0]!.id, positionCursor) > 0 ? entries : entries.filter((e) => compareStreamIds(e.id, positionCursor) > 0);
      if (fresh.length === 0) return;
      this.positionCursors[stream] = lastId;
      sink.dispatchPositions(decodePositions(fresh, this.onMalformed));
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
      if (this.clockTimer) clearInterval(this.clockTimer);
      this.wake();
      await this.bus.close();
    }
    await this.loop;
  }
}
