import type { Redis } from 'ioredis';
import type { Logger } from '../shared/log.js';

export interface LoginClaim {
  allowed: boolean;
  /** Seconds until the window ends (for Retry-After). */
  retryAfterS: number;
}

export interface LoginAttempts {
  /**
   * Counts an attempt before its password is checked, in one atomic step: of a burst of N concurrent
   * attempts only the first `max` get through, however they interleave (docs/design.md, "REST API").
   */
  claim(key: string): Promise<LoginClaim>;
  /** Takes a claim back once its password proved right: only failures stay counted. */
  release(key: string): Promise<void>;
}

// INCR, and the window's expiry set by the first attempt in it: one script, so no two callers see the same count.
const CLAIM = `
  local count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
  return {count, redis.call('PTTL', KEYS[1])}`;
const RELEASE = `
  if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then return redis.call('DECR', KEYS[1]) end
  return 0`;

/**
 * Failed attempts per key, shared by every process through Redis: sign-ins per canonical organization
 * id and lowercased email (the login route), and credential look-ups per client address
 * (credential-cache.ts, its own prefix); counted in this process while Redis is away (or absent), so an outage opens
 * no door.
 */
export function loginAttempts(options: { redis: Redis | null; prefix: string; max: number; windowMs: number; log: Logger }): LoginAttempts {
  const { redis, prefix, max, windowMs, log } = options;
  const local = localCounts(windowMs);
  const verdict = (count: number, ttlMs: number): LoginClaim => ({ allowed: count <= max, retryAfterS: Math.max(1, Math.ceil(ttlMs / 1000)) });
  return {
    async claim(key) {
      if (redis) {
        try {
          const [count, ttlMs] = (await redis.eval(CLAIM, 1, prefix + key, windowMs)) as [number, number];
          return verdict(count, ttlMs);
        } catch (err) {
          log.warn({ err, prefix }, 'failed-attempt counts: Redis unavailable; counting in this process');
        }
      }
      const { count, ttlMs } = local.increment(key);
      return verdict(count, ttlMs);
    },
    async release(key) {
      local.decrement(key);
      if (redis) await redis.eval(RELEASE, 1, prefix + key).catch(() => {});
    },
  };
}

function localCounts(windowMs: number) {
  const counts = new Map<string, { count: number; endsAt: number }>();
  return {
    increment(key: string) {
      const now = Date.now();
      let entry = counts.get(key);
      if (!entry || entry.endsAt <= now) {
        if (counts.size > 100_000) for (const [k, e] of counts) if (e.endsAt <= now) counts.delete(k);
        counts.set(key, (entry = { count: 0, endsAt: now + windowMs }));
      }
      entry.count++;
      return { count: entry.count, ttlMs: entry.endsAt - now };
    },
    decrement(key: string) {
      const entry = counts.get(key);
      if (entry && entry.count > 0) entry.count--;
    },
  };
}
