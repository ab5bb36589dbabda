import type { Redis } from 'ioredis';
import type { Coordination } from './coordination.js';
import { createRedis } from './redis-bus.js';

// Renew or release only a lease we still hold (a lapsed one may already be another process's).
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
const HSET_IF_HOLDER = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return 1`;

/** Lua's unpack has a stack limit; fields per call stay well under it. */
const FIELDS_PER_CALL = 1000;

type Scripts = {
  fieldopsLeaseRenew(key: string, owner: string, ttlMs: number): Promise<number>;
  fieldopsLeaseRelease(key: string, owner: string): Promise<number>;
};
type ScriptPipeline = {
  fieldopsHsetIfHolder(...args: string[]): void;
  exec(): Promise<[Error | null, unknown][] | null>;
};

/** Coordination on Redis: `SET NX PX` leases, a sorted set of heartbeats, lease-fenced `HSET` in Lua. */
export class RedisCoordination implements Coordination {
  private readonly redis: Redis;
  private closed: Promise<void> | null = null;

  constructor(url: string) {
    this.redis = createRedis(url);
    this.redis.on('error', () => {}); // reconnects by itself; callers see failed commands
    this.redis.defineCommand('fieldopsLeaseRenew', { numberOfKeys: 1, lua: RENEW });
    this.redis.defineCommand('fieldopsLeaseRelease', { numberOfKeys: 1, lua: RELEASE });
    this.redis.defineCommand('fieldopsHsetIfHolder', { numberOfKeys: 2, lua: HSET_IF_HOLDER });
  }

  private get scripts(): Scripts {
    return this.redis as unknown as Scripts;
  }

  async heartbeat(set: string, member: string, nowMs: number, ttlMs: number): Promise<number> {
    const results = await this.redis.multi()
      .zadd(set, nowMs, member)
      .zremrangebyscore(set, '-inf', nowMs - ttlMs)
      .zcard(set)
      .exec();
    const [err, live] = results?.[2] ?? [new Error('redis transaction aborted'), 0];
    if (err) throw err;
    return Number(live);
  }

  async leave(set: string, member: string): Promise<void> {
    await this.redis.zrem(set, member);
  }

  async acquireLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(key, owner, 'PX', ttlMs, 'NX')) === 'OK';
  }

  async renewLease(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.scripts.fieldopsLeaseRenew(key, owner, ttlMs)) === 1;
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    await this.scripts.fieldopsLeaseRelease(key, owner);
  }

  async readHash(key: string): Promise<Map<string, string>> {
    const fields = new Map<string, string>();
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(key, cursor, 'COUNT', 1000);
      for (let i = 0; i < flat.length; i += 2) fields.set(flat[i]!, flat[i + 1]!);
      cursor = next;
    } while (cursor !== '0');
    return fields;
  }

  async writeHashIfLeaseHeld(leaseKey: string, owner: string, key: string, fields: Map<string, string>): Promise<boolean> {
    if (fields.size === 0) return true;
    const flat: string[] = [];
    for (const [field, value] of fields) flat.push(field, value);
    // One round trip: the chunks go in one pipeline, each checking the lease again.
    const pipeline = this.redis.pipeline() as unknown as ScriptPipeline;
    for (let i = 0; i < flat.length; i += FIELDS_PER_CALL * 2) {
      pipeline.fieldopsHsetIfHolder(leaseKey, key, owner, ...flat.slice(i, i + FIELDS_PER_CALL * 2));
    }
    const results = await pipeline.exec();
    if (!results) throw new Error('redis pipeline aborted');
    for (const [err, written] of results) {
      if (err) throw err;
      if (written !== 1) return false;
    }
    return true;
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.closed ??= this.redis.quit().then(() => undefined, () => this.redis.disconnect());
    return this.closed;
  }
}
