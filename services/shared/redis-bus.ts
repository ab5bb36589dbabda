import { Redis, type RedisOptions } from 'ioredis';
import type { AppendRequest, StreamBatch, StreamBus, StreamEntry } from './bus.js';
import { compareStreamIds } from './stream-ids.js';

type RawEntry = [id: string, fields: string[]];
type RawStreams = [stream: string, entries: RawEntry[]][] | null;

// XADD only when the once-key is new; the key remembers the id so that a retry returns it.
const APPEND_ONCE = `
local existing = redis.call('GET', KEYS[2])
if existing then return existing end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[2], id, 'EX', ARGV[2])
return id`;

export function createRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: false, ...options });
}

/** Deletes every key under a prefix (a test file's or a bench run's), scanning rather than blocking Redis. */
export async function deleteKeysWithPrefix(url: string, prefix: string): Promise<void> {
  if (!prefix) throw new Error('refusing to delete every key: no prefix given');
  const redis = createRedis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** The Redis stream bus. Blocking reads get their own connection so that they never delay writes. */
export class RedisStreamBus implements StreamBus {
  private readonly writer: Redis;
  private blocking: Redis | null = null;
  private closed: Promise<void> | null = null;

  constructor(private readonly url: string, private readonly onceKeyPrefix = '') {
    this.writer = createRedis(url);
    this.writer.on('error', () => {}); // reconnects by itself; callers see failed commands
    this.writer.defineCommand('fieldopsAppendOnce', { numberOfKeys: 2, lua: APPEND_ONCE });
  }

  private reader(): Redis {
    if (!this.blocking) {
      this.blocking = createRedis(this.url, { maxRetriesPerRequest: null });
      this.blocking.on('error', () => {});
    }
    return this.blocking;
  }

  async append(entries: AppendRequest[], maxLen: number): Promise<string[]> {
    if (entries.length === 0) return [];
    const pipeline = this.writer.pipeline();
    for (const entry of entries) {
      pipeline.xadd(entry.stream, 'MAXLEN', '~', entry.maxLen ?? maxLen, '*', ...flatten(entry.fields));
    }
    return unwrap(await pipeline.exec()) as string[];
  }

  async appendOnce(entries: (AppendRequest & { onceKey: string })[], maxLen: number, onceTtlS: number): Promise<string[]> {
    if (entries.length === 0) return [];
    const pipeline = this.writer.pipeline() as unknown as {
      fieldopsAppendOnce(...args: (string | number)[]): void;
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    for (const { stream, fields, onceKey } of entries) {
      pipeline.fieldopsAppendOnce(stream, this.onceKeyPrefix + onceKey, maxLen, onceTtlS, ...flatten(fields));
    }
    return unwrap(await pipeline.exec()) as string[];
  }

  async read(cursors: Record<string, string>, { blockMs, count }: { blockMs: number; count: number }): Promise<StreamBatch[]> {
    const streams = Object.keys(cursors);
    if (streams.length === 0) return [];
    const raw = (await this.reader().xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...streams,
      ...streams.map((s) => cursors[s]!))) as RawStreams;
    return toBatches(raw);
  }

  async range(stream: string, startId: string, endId: string, count: number): Promise<StreamEntry[]> {
    const raw = (await this.writer.xrange(stream, startId, endId, 'COUNT', count)) as RawEntry[];
    return raw.map(toEntry);
  }

  async ensureGroup(stream: string, group: string, startId: string): Promise<void> {
    try {
      await this.writer.xgroup('CREATE', stream, group, startId, 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
  }

  async readGroup(group: string, consumer: string, streams: string[], { blockMs, count }: { blockMs: number; count: number }): Promise<StreamBatch[]> {
    if (streams.length === 0) return [];
    const raw = (await this.reader().xreadgroup('GROUP', group, consumer, 'COUNT', count, 'BLOCK', blockMs,
      'STREAMS', ...streams, ...streams.map(() => '>'))) as RawStreams;
    return toBatches(raw);
  }

  async ack(stream: string, group: string, ids: string[]): Promise<void> {
    if (ids.length) await this.writer.xack(stream, group, ...ids);
  }

  async claimIdle(stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]> {
    const claimed: StreamEntry[] = [];
    let cursor = '0-0';
    do {
      const [next, entries] = (await this.writer.xautoclaim(stream, group, consumer, minIdleMs, cursor, 'COUNT', count)) as [string, (RawEntry | null)[]];
      for (const entry of entries) if (entry) claimed.push(toEntry(entry));
      cursor = next;
    } while (cursor !== '0-0' && claimed.length < count);
    return claimed;
  }

  async firstId(stream: string): Promise<string> {
    const raw = (await this.writer.xrange(stream, '-', '+', 'COUNT', 1)) as RawEntry[];
    return raw[0]?.[0] ?? '0-0';
  }

  async lastId(stream: string): Promise<string> {
    const raw = (await this.writer.xrevrange(stream, '+', '-', 'COUNT', 1)) as RawEntry[];
    return raw[0]?.[0] ?? '0-0';
  }

  async trimConsumed(stream: string, group: string): Promise<void> {
    let groups: unknown[][];
    try {
      groups = (await this.writer.xinfo('GROUPS', stream)) as unknown[][];
    } catch {
      return; // no such stream yet
    }
    const infos = groups.map((flat) => {
      const fields: Record<string, unknown> = {};
      for (let i = 0; i < flat.length; i += 2) fields[String(flat[i])] = flat[i + 1];
      return fields;
    });
    if (!infos.some((g) => g.name === group)) return;
    // Every group keeps what it has not acknowledged: another reader of the stream is never trimmed past.
    let keepFrom: string | null = null;
    for (const info of infos) {
      const [pending, oldestPending] = (await this.writer.xpending(stream, String(info.name))) as [number, string | null];
      const from = pending > 0 && oldestPending ? oldestPending : String(info['last-delivered-id']);
      if (keepFrom === null || compareStreamIds(from, keepFrom) < 0) keepFrom = from;
    }
    if (keepFrom && keepFrom !== '0-0') await this.writer.xtrim(stream, 'MINID', keepFrom);
  }

  async serverTimeMs(): Promise<number> {
    const [seconds, micros] = await this.writer.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  async ping(): Promise<void> {
    await this.writer.ping();
  }

  /** Idempotent: every caller gets the same promise. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.blocking?.disconnect();
      await this.writer.quit().catch(() => this.writer.disconnect());
    })();
    return this.closed;
  }
}

function flatten(fields: Record<string, string>): string[] {
  const out: string[] = [];
  for (const key in fields) out.push(key, fields[key]!);
  return out;
}

function toEntry([id, flat]: RawEntry): StreamEntry {
  const fields: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
  return { id, fields };
}

function toBatches(raw: RawStreams): StreamBatch[] {
  return (raw ?? []).map(([stream, entries]) => ({ stream, entries: entries.map(toEntry) }));
}

function unwrap(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error('redis pipeline aborted');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
