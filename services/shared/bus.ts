/**
 * The stream bus between roles. One interface, so that the Redis implementation (production, tests)
 * and the in-process one (docs/design.md, "Two commands: embedded PostgreSQL and the in-process bus") are interchangeable.
 */
export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

export interface StreamBatch {
  stream: string;
  entries: StreamEntry[];
}

export interface AppendRequest {
  stream: string;
  fields: Record<string, string>;
  /** Overrides the call's `maxLen` for this entry's stream. */
  maxLen?: number;
}

export interface StreamBus {
  /** Appends entries (pipelined), each stream trimmed approximately to `maxLen`; returns their ids in order. */
  append(entries: AppendRequest[], maxLen: number): Promise<string[]>;
  /**
   * Appends each entry at most once per `onceKey` (kept `onceTtlS` seconds): a retry after a crash
   * between append and bookkeeping returns the id of the first append instead of a duplicate.
   */
  appendOnce(entries: (AppendRequest & { onceKey: string })[], maxLen: number, onceTtlS: number): Promise<string[]>;
  /** Blocking read of new entries after the given ids (one call serves many streams). */
  read(cursors: Record<string, string>, options: { blockMs: number; count: number }): Promise<StreamBatch[]>;
  /** Entries between two ids inclusive, oldest first. */
  range(stream: string, startId: string, endId: string, count: number): Promise<StreamEntry[]>;
  /** Creates the consumer group if missing (and the stream with it). */
  ensureGroup(stream: string, group: string, startId: string): Promise<void>;
  readGroup(group: string, consumer: string, streams: string[], options: { blockMs: number; count: number }): Promise<StreamBatch[]>;
  ack(stream: string, group: string, ids: string[]): Promise<void>;
  /** Takes over entries idle for `minIdleMs` from dead consumers of the group (XAUTOCLAIM). */
  claimIdle(stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]>;
  /** The oldest id still held by the stream ('0-0' when empty): tells whether a replay can come from it. */
  firstId(stream: string): Promise<string>;
  /** The newest id in the stream ('0-0' when empty): a reader that starts after it sees only what comes next. */
  lastId(stream: string): Promise<string>;
  /**
   * Drops the entries a consumer group has been handed and has acknowledged (everything older than its
   * oldest pending entry, or up to its last delivered one) — and only those that every other group of the
   * stream has acknowledged too. A stream without that group is left alone.
   */
  trimConsumed(stream: string, group: string): Promise<void>;
  /** The server's clock (ms since the epoch), which stamps the ids of appended entries. */
  serverTimeMs(): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
