import type { AppendRequest, StreamBatch, StreamBus, StreamEntry } from './bus.js';

/**
 * The stream bus of the one-process start (docs/design.md, "Two commands: embedded PostgreSQL and
 * the in-process bus"): the semantics of Redis streams that the roles depend on — ids `<ms>-<seq>`,
 * MAXLEN trimming, blocking reads over many streams, consumer groups with pending entries, claims of
 * idle entries, trimming by a group's progress, once-keys — held in this process's memory. Nothing
 * survives a restart, as with a Redis without persistence: PostgreSQL is the source of truth, the
 * streams are transport.
 */

interface Id {
  ms: number;
  seq: number;
}

interface StoredEntry extends StreamEntry, Id {}

interface Pending {
  consumer: string;
  deliveredAtMs: number;
}

interface Group {
  lastDelivered: Id;
  /** By id: entries are delivered in id order and a claim changes the holder in place. */
  pending: Map<string, Pending>;
}

interface Waiter {
  streams: ReadonlySet<string>;
  wake(): void;
}

/** One stream: entries from `head` on (the slots before it are trimmed, compacted now and then). */
class Stream {
  entries: StoredEntry[] = [];
  head = 0;
  last: Id = { ms: 0, seq: 0 };
  readonly groups = new Map<string, Group>();

  get length(): number {
    return this.entries.length - this.head;
  }

  first(): StoredEntry | undefined {
    return this.entries[this.head];
  }

  newest(): StoredEntry | undefined {
    return this.length > 0 ? this.entries[this.entries.length - 1] : undefined;
  }

  /** Index of the first entry with an id at or after `id` (after it when `exclusive`). */
  indexAfter(id: Id, exclusive: boolean): number {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareIds(this.entries[mid]!, id);
      if (c < 0 || (exclusive && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  dropBefore(index: number): void {
    if (index <= this.head) return;
    this.head = Math.min(index, this.entries.length);
    // Compact once the dead prefix outweighs the live part, so trimming stays O(1) amortized.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * The streams of one process, shared by every `InProcessStreamBus` handle made from it (each role's
 * blocking loop takes a handle of its own, as with Redis connections).
 */
export class InProcessStreams {
  private readonly streams = new Map<string, Stream>();
  private readonly onceKeys = new Map<string, { id: string; expiresAtMs: number }>();
  private readonly waiters = new Set<Waiter>();
  private onceSweepAtMs = 0;

  /** A handle implementing StreamBus; closing it ends only its own blocked reads. */
  connect(): InProcessStreamBus {
    return new InProcessStreamBus(this);
  }

  stream(name: string, create: true): Stream;
  stream(name: string, create?: false): Stream | undefined;
  stream(name: string, create = false): Stream | undefined {
    let stream = this.streams.get(name);
    if (!stream && create) {
      stream = new Stream();
      this.streams.set(name, stream);
    }
    return stream;
  }

  add(name: string, fields: Record<string, string>, maxLen: number): string {
    const stream = this.stream(name, true);
    const now = Date.now();
    // Ids only grow, even when the clock steps back (as Redis does).
    const id: Id = now > stream.last.ms ? { ms: now, seq: 0 } : { ms: stream.last.ms, seq: stream.last.seq + 1 };
    stream.last = id;
    const text = formatId(id);
    stream.entries.push({ id: text, fields: { ...fields }, ms: id.ms, seq: id.seq });
    // `MAXLEN ~`: trim in steps rather than on every append, keeping at least maxLen entries.
    const slack = Math.max(100, Math.floor(maxLen / 100));
    if (stream.length > maxLen + slack) stream.dropBefore(stream.entries.length - maxLen);
    this.wake(name);
    return text;
  }

  addOnce(name: string, fields: Record<string, string>, maxLen: number, onceKey: string, onceTtlS: number): string {
    const now = Date.now();
    this.sweepOnceKeys(now);
    const existing = this.onceKeys.get(onceKey);
    if (existing && existing.expiresAtMs > now) return existing.id;
    const id = this.add(name, fields, maxLen);
    this.onceKeys.set(onceKey, { id, expiresAtMs: now + onceTtlS * 1000 });
    return id;
  }

  /** Entries after each cursor, up to `count` per stream; only streams with entries appear. */
  readAfter(cursors: Record<string, string>, count: number): StreamBatch[] {
    const batches: StreamBatch[] = [];
    for (const name of Object.keys(cursors)) {
      const stream = this.streams.get(name);
      if (!stream || stream.length === 0) continue;
      const cursor = cursors[name]!;
      const after = cursor === '$' ? stream.last : parseId(cursor, 0);
      const from = stream.indexAfter(after, true);
      const entries = sliceEntries(stream, from, count);
      if (entries.length) batches.push({ stream: name, entries });
    }
    return batches;
  }

  /** XREADGROUP with `>`: new entries for the group, recorded as pending for `consumer`. */
  deliverNew(groupName: string, consumer: string, names: string[], count: number): StreamBatch[] {
    const batches: StreamBatch[] = [];
    const now = Date.now();
    for (const name of names) {
      const group = this.streams.get(name)?.groups.get(groupName);
      if (!group) throw new Error(`NOGROUP No such key '${name}' or consumer group '${groupName}' in XREADGROUP with GROUP option`);
    }
    for (const name of names) {
      const stream = this.streams.get(name)!;
      const group = stream.groups.get(groupName)!;
      const entries = sliceEntries(stream, stream.indexAfter(group.lastDelivered, true), count);
      if (entries.length === 0) continue;
      for (const entry of entries) group.pending.set(entry.id, { consumer, deliveredAtMs: now });
      const newest = entries[entries.length - 1]!;
      group.lastDelivered = parseId(newest.id, 0);
      batches.push({ stream: name, entries });
    }
    return batches;
  }

  createGroup(name: string, groupName: string, startId: string): void {
    const stream = this.stream(name, true);
    if (stream.groups.has(groupName)) return;
    stream.groups.set(groupName, { lastDelivered: startId === '$' ? stream.last : parseId(startId, 0), pending: new Map() });
  }

  ack(name: string, groupName: string, ids: string[]): void {
    const group = this.streams.get(name)?.groups.get(groupName);
    if (!group) return;
    for (const id of ids) group.pending.delete(id);
  }

  /** XAUTOCLAIM: pending entries idle for `minIdleMs` move to `consumer`; trimmed ones leave the pending list. */
  claimIdle(name: string, groupName: string, consumer: string, minIdleMs: number, count: number): StreamEntry[] {
    const stream = this.streams.get(name);
    const group = stream?.groups.get(groupName);
    if (!stream || !group) throw new Error(`NOGROUP No such key '${name}' or consumer group '${groupName}'`);
    const now = Date.now();
    const claimed: StreamEntry[] = [];
    for (const [id, pending] of group.pending) {
      if (claimed.length >= count) break;
      if (now - pending.deliveredAtMs < minIdleMs) continue;
      const index = stream.indexAfter(parseId(id, 0), false);
      const entry = stream.entries[index];
      if (!entry || entry.id !== id) {
        group.pending.delete(id);
        continue;
      }
      pending.consumer = consumer;
      pending.deliveredAtMs = now;
      claimed.push({ id: entry.id, fields: entry.fields });
    }
    return claimed;
  }

  range(name: string, startId: string, endId: string, count: number): StreamEntry[] {
    const stream = this.streams.get(name);
    if (!stream) return [];
    const from = startId === '-' ? stream.head
      : startId.startsWith('(') ? stream.indexAfter(parseId(startId.slice(1), 0), true)
      : stream.indexAfter(parseId(startId, 0), false);
    const endExclusive = endId.startsWith('(');
    const end = endId === '+' ? null : parseId(endExclusive ? endId.slice(1) : endId, Number.MAX_SAFE_INTEGER);
    const out: StreamEntry[] = [];
    for (let i = from; i < stream.entries.length && out.length < count; i++) {
      const entry = stream.entries[i]!;
      if (end) {
        const c = compareIds(entry, end);
        if (c > 0 || (endExclusive && c === 0)) break;
      }
      out.push({ id: entry.id, fields: entry.fields });
    }
    return out;
  }

  firstId(name: string): string {
    return this.streams.get(name)?.first()?.id ?? '0-0';
  }

  lastId(name: string): string {
    return this.streams.get(name)?.newest()?.id ?? '0-0';
  }

  /**
   * Drops what every group has been handed and acknowledged: entries before the oldest pending one of any
   * group, or after the last one delivered to the group furthest behind.
   */
  trimConsumed(name: string, groupName: string): void {
    const stream = this.streams.get(name);
    if (!stream || !stream.groups.has(groupName)) return;
    let keepFrom: { ms: number; seq: number } | null = null;
    for (const group of stream.groups.values()) {
      const oldestPending = group.pending.keys().next();
      const from = oldestPending.done ? group.lastDelivered : parseId(oldestPending.value, 0);
      if (keepFrom === null || compareIds(from, keepFrom) < 0) keepFrom = from;
    }
    if (!keepFrom || (keepFrom.ms === 0 && keepFrom.seq === 0)) return;
    stream.dropBefore(stream.indexAfter(keepFrom, false));
  }

  /** Resolves when one of `streams` gets an entry, after `blockMs`, or when a handle calls the wake-ups in `cancel`. */
  waitForEntries(streams: ReadonlySet<string>, blockMs: number, cancel: Set<() => void>): Promise<void> {
    return new Promise((resolve) => {
      const waiter: Waiter = { streams, wake: () => done() };
      // Redis: BLOCK 0 waits for ever; a handle's close still ends it.
      const timer = blockMs > 0 ? setTimeout(() => done(), blockMs) : null;
      const done = () => {
        if (timer) clearTimeout(timer);
        this.waiters.delete(waiter);
        cancel.delete(done);
        resolve();
      };
      this.waiters.add(waiter);
      cancel.add(done);
    });
  }

  private wake(name: string): void {
    for (const waiter of this.waiters) if (waiter.streams.has(name)) waiter.wake();
  }

  private sweepOnceKeys(now: number): void {
    if (now < this.onceSweepAtMs) return;
    this.onceSweepAtMs = now + 60_000;
    for (const [key, { expiresAtMs }] of this.onceKeys) if (expiresAtMs <= now) this.onceKeys.delete(key);
  }
}

/** A StreamBus over the process's `InProcessStreams`. */
export class InProcessStreamBus implements StreamBus {
  private closed = false;
  /** Wake-ups of this handle's blocked reads, run on close. */
  private readonly blocked = new Set<() => void>();

  constructor(private readonly store: InProcessStreams) {}

  async append(entries: AppendRequest[], maxLen: number): Promise<string[]> {
    this.checkOpen();
    return entries.map((e) => this.store.add(e.stream, e.fields, e.maxLen ?? maxLen));
  }

  async appendOnce(entries: (AppendRequest & { onceKey: string })[], maxLen: number, onceTtlS: number): Promise<string[]> {
    this.checkOpen();
    return entries.map((e) => this.store.addOnce(e.stream, e.fields, e.maxLen ?? maxLen, e.onceKey, onceTtlS));
  }

  async read(cursors: Record<string, string>, { blockMs, count }: { blockMs: number; count: number }): Promise<StreamBatch[]> {
    this.checkOpen();
    // `$` means "after what is there now", fixed at the call as in XREAD.
    const fixed: Record<string, string> = {};
    for (const [stream, cursor] of Object.entries(cursors)) fixed[stream] = cursor === '$' ? this.store.lastId(stream) : cursor;
    return this.blockUntil(() => this.store.readAfter(fixed, count), Object.keys(fixed), blockMs);
  }

  async range(stream: string, startId: string, endId: string, count: number): Promise<StreamEntry[]> {
    this.checkOpen();
    return this.store.range(stream, startId, endId, count);
  }

  async ensureGroup(stream: string, group: string, startId: string): Promise<void> {
    this.checkOpen();
    this.store.createGroup(stream, group, startId);
  }

  async readGroup(group: string, consumer: string, streams: string[], { blockMs, count }: { blockMs: number; count: number }): Promise<StreamBatch[]> {
    this.checkOpen();
    if (streams.length === 0) return [];
    return this.blockUntil(() => this.store.deliverNew(group, consumer, streams, count), streams, blockMs);
  }

  async ack(stream: string, group: string, ids: string[]): Promise<void> {
    this.checkOpen();
    this.store.ack(stream, group, ids);
  }

  async claimIdle(stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]> {
    this.checkOpen();
    return this.store.claimIdle(stream, group, consumer, minIdleMs, count);
  }

  async firstId(stream: string): Promise<string> {
    this.checkOpen();
    return this.store.firstId(stream);
  }

  async lastId(stream: string): Promise<string> {
    this.checkOpen();
    return this.store.lastId(stream);
  }

  async trimConsumed(stream: string, group: string): Promise<void> {
    this.checkOpen();
    this.store.trimConsumed(stream, group);
  }

  async serverTimeMs(): Promise<number> {
    this.checkOpen();
    return Date.now();
  }

  async ping(): Promise<void> {
    this.checkOpen();
  }

  /** Idempotent; a read blocked on this handle returns empty, as a closed connection ends a blocking read. */
  async close(): Promise<void> {
    this.closed = true;
    for (const wake of [...this.blocked]) wake();
  }

  private async blockUntil(poll: () => StreamBatch[], streams: string[], blockMs: number): Promise<StreamBatch[]> {
    const watched = new Set(streams);
    for (;;) {
      const batches = poll();
      if (batches.length || this.closed) return batches;
      const startedMs = Date.now();
      await this.store.waitForEntries(watched, blockMs, this.blocked);
      if (this.closed) return [];
      if (blockMs > 0) {
        blockMs -= Date.now() - startedMs;
        if (blockMs <= 0) return poll();
      }
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('stream bus is closed');
  }
}

function sliceEntries(stream: Stream, from: number, count: number): StreamEntry[] {
  const out: StreamEntry[] = [];
  for (let i = from; i < stream.entries.length && out.length < count; i++) {
    const entry = stream.entries[i]!;
    out.push({ id: entry.id, fields: entry.fields });
  }
  return out;
}

function compareIds(a: Id, b: Id): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.seq - b.seq;
}

/** `ms-seq`, or `ms` alone with `seqDefault` (0 for a start, the largest for an end, as in XRANGE). */
function parseId(text: string, seqDefault: number): Id {
  const dash = text.indexOf('-');
  const ms = Number(dash === -1 ? text : text.slice(0, dash));
  const seq = dash === -1 ? seqDefault : Number(text.slice(dash + 1));
  if (!Number.isSafeInteger(ms) || ms < 0 || !(Number.isSafeInteger(seq) || seq === Number.MAX_SAFE_INTEGER) || seq < 0) {
    throw new Error(`ERR Invalid stream ID specified as stream command argument: ${text}`);
  }
  return { ms, seq };
}

function formatId({ ms, seq }: Id): string {
  return `${ms}-${seq}`;
}
