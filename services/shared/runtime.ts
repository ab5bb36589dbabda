import type { Config, ServiceDbRole } from './config.js';
import type { Pool } from './db.js';
import { createServicePool } from './db.js';
import type { Logger } from './log.js';
import type { StreamBus } from './bus.js';
import { RedisStreamBus } from './redis-bus.js';
import { streamNames, type StreamNames } from './contracts/stream-codec.js';
import { UwsServer } from './uws-server.js';

/**
 * The one place that chooses the stream bus implementation. A blocking loop takes a bus of its own
 * (a blocking read holds its connection); everything else shares `runtime.bus()`.
 */
export function createStreamBus(config: Config): StreamBus {
  return new RedisStreamBus(config.REDIS_URL, config.REDIS_PREFIX);
}

/**
 * What the roles of one process share: database pools per service role, the stream bus, the
 * realtime listener. Created on first use and closed once, after every role has stopped.
 */
export class Runtime {
  private readonly pools = new Map<ServiceDbRole, Pool>();
  private busInstance: StreamBus | null = null;
  private uws: UwsServer | null = null;
  readonly streams: StreamNames;

  constructor(readonly config: Config, readonly log: Logger) {
    this.streams = streamNames(config.REDIS_PREFIX, config.POSITION_SHARDS);
  }

  pool(role: ServiceDbRole): Pool {
    let pool = this.pools.get(role);
    if (!pool) {
      pool = createServicePool(this.config, role);
      this.pools.set(role, pool);
    }
    return pool;
  }

  bus(): StreamBus {
    this.busInstance ??= createStreamBus(this.config);
    return this.busInstance;
  }

  realtimeServer(): UwsServer {
    this.uws ??= new UwsServer();
    return this.uws;
  }

  /** The realtime port once listening, without creating the server (the map page's config needs it). */
  realtimePort(): number | null {
    return this.uws?.port || null;
  }

  /** Opens the realtime port if a role registered on it; returns the port (or null). */
  async listenRealtime(): Promise<number | null> {
    if (!this.uws) return null;
    return this.uws.listen(this.config.HOST, this.config.REALTIME_PORT);
  }

  async close(): Promise<void> {
    this.uws?.close();
    await Promise.allSettled([...this.pools.values()].map((p) => p.end()));
    this.pools.clear();
    await this.busInstance?.close();
  }
}

/** A started role. `close()` stops taking work, finishes or hands back what it holds, then returns. */
export interface RunningRole {
  readonly name: string;
  /** Where it can be reached, for the start banner. */
  readonly endpoints: Record<string, string>;
  close(): Promise<void>;
}

export type RoleStarter = (runtime: Runtime) => Promise<RunningRole>;
