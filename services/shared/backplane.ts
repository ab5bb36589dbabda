import type { Redis } from 'ioredis';
import type { StreamBus } from './bus.js';
import type { Config } from './config.js';
import type { Coordination } from './coordination.js';
import { InProcessStreams } from './in-process-bus.js';
import { InProcessCoordination } from './in-process-coordination.js';
import { createRedis, RedisStreamBus } from './redis-bus.js';
import { RedisCoordination } from './redis-coordination.js';

/**
 * What the roles share besides PostgreSQL: the stream bus, coordination (leases, lease-fenced state),
 * and the store of the API's rate limits and failed-login counts. Redis when REDIS_URL is set — any
 * number of processes; in-process when it is not — one process holds every role (docs/design.md, "Two commands: embedded PostgreSQL and the in-process bus").
 * Chosen here, once; each `connect…` hands out a handle its caller closes.
 */
export interface Backplane {
  readonly kind: 'redis' | 'in-process';
  /** For the start banner. */
  readonly description: string;
  /** A stream bus; a blocking loop takes one of its own (a blocking read holds its connection). */
  connectBus(): StreamBus;
  connectCoordination(): Coordination;
  /** Redis for @fastify/rate-limit, or null: the limiter then counts in this process's memory. */
  connectRateLimitStore(): Redis | null;
}

export function createBackplane(config: Config): Backplane {
  const url = config.REDIS_URL;
  if (url) {
    return {
      kind: 'redis',
      description: `Redis at ${new URL(url).host}`,
      connectBus: () => new RedisStreamBus(url, config.REDIS_PREFIX),
      connectCoordination: () => new RedisCoordination(url),
      // Its own connection: rate-limit counters must not queue behind stream traffic. Fail fast, so a Redis
      // outage costs a request a second at most (the limiter then lets requests through).
      connectRateLimitStore: () => createRedis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 1000 }),
    };
  }
  const streams = new InProcessStreams();
  const coordination = new InProcessCoordination();
  return {
    kind: 'in-process',
    description: 'in-process stream bus (one process holds every role)',
    connectBus: () => streams.connect(),
    connectCoordination: () => coordination,
    connectRateLimitStore: () => null,
  };
}
