import { createBackplane, type Backplane } from './backplane.js';
import type { StreamBus } from './bus.js';
import type { Config, ServiceDbRole } from './config.js';
import { serverDatabase, type Database } from './database.js';
import type { Pool } from './db.js';
import type { Logger } from './log.js';
import { streamNames, type StreamNames } from './contracts/stream-codec.js';
import { UwsServer } from './uws-server.js';

export interface RuntimeOptions {
  /** Default: the server named by DATABASE_URL. */
  database?: Database;
  /** Default: chosen by REDIS_URL (createBackplane). */
  backplane?: Backplane;
  /** Close the database with the runtime (when the runtime was handed one it started). */
  ownsDatabase?: boolean;
}

/**
 * What the roles of one process share: the database (pools per service role), the backplane (stream
 * bus, coordination, rate-limit store), the realtime listener. Created on first use and closed once,
 * after every role has stopped.
 */
export class Runtime {
  private readonly pools = new Map<ServiceDbRole, Pool>();
  private busInstance: StreamBus | null = null;
  private uws: UwsServer | null = null;
  readonly streams: StreamNames;
  readonly database: Database;
  readonly backplane: Backplane;
  private readonly ownsDatabase: boolean;

  constructor(readonly config: Config, readonly log: Logger, options: RuntimeOptions = {}) {
    this.streams = streamNames(config.REDIS_PREFIX, config.POSITION_SHARDS);
    this.database = options.database ?? serverDatabase(config);
    this.backplane = options.backplane ?? createBackplane(config);
    this.ownsDatabase = options.ownsDatabase ?? false;
  }

  pool(role: ServiceDbRole): Pool {
    let pool = this.pools.get(role);
    if (!pool) {
      pool = this.database.servicePool(role, this.config.DATABASE_POOL_SIZE);
      this.pools.set(role, pool);
    }
    return pool;
  }

  /** The process's shared bus for non-blocking calls; a blocking loop takes `backplane.connectBus()`. */
  bus(): StreamBus {
    this.busInstance ??= this.backplane.connectBus();
    return this.busInstance;
  }

  realtimeServer(): UwsServer {
    this.uws ??= new UwsServer({ metricsToken: this.config.METRICS_TOKEN });
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
    if (this.ownsDatabase) await this.database.close();
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
