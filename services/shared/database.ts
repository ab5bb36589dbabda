import { resolve } from 'node:path';
import pg from 'pg';
import type { Config, ServiceDbRole } from './config.js';
import { SERVICE_DB_ROLES } from './config.js';
import { createPool, hearConnectionErrors, type Pool } from './db.js';
import { DataDirInUseError, EMBEDDED_USER, EmbeddedPostgres, embeddedConnection } from './embedded-postgres.js';
import type { Logger } from './log.js';
import { NoticeRelay, sessionScopedClient } from './session-scoped-client.js';

/**
 * The PostgreSQL a process talks to, chosen once (`openDatabase`): a server named by `DATABASE_URL`,
 * or the embedded one under `DATA_DIR` when it is unset (docs/design.md, "Two commands: embedded PostgreSQL and the in-process bus"). Everything else asks
 * it for pools and clients, so that no code path needs to know which it is — except the few that
 * must (ingest's write path: `supportsCopy`).
 */
export interface Database {
  readonly kind: 'server' | 'embedded';
  /** Where it is, for the start banner (no password). */
  readonly description: string;
  /** COPY FROM STDIN works (it does not through the embedded socket: the connection loses protocol sync). */
  readonly supportsCopy: boolean;
  /** Several processes may use it at once (advisory locks and LISTEN/NOTIFY work between them). */
  readonly shared: boolean;
  servicePool(role: ServiceDbRole, max: number): Pool;
  /** A connection of a service role outside the pools (a LISTEN connection); not yet connected. */
  serviceClient(role: ServiceDbRole, applicationName: string): pg.Client;
  /** The owner (migrations, tenant administration): not yet connected. */
  ownerClient(): pg.Client;
  ownerPool(max: number): Pool;
  close(): Promise<void>;
}

export interface OpenOptions {
  /**
   * When another process serves the embedded database (`npm start` is running), connect to its socket
   * instead of failing — for administrative commands (`fieldops tenant create`, `fieldops migrate`).
   */
  attach?: boolean;
}

export async function openDatabase(config: Config, log: Logger, options: OpenOptions = {}): Promise<Database> {
  if (config.DATABASE_URL) return serverDatabase(config);
  return openEmbeddedDatabase(config.DATA_DIR, log, options);
}

/** The embedded PostgreSQL under `dataDir`, started in this process (or attached to, see OpenOptions). */
export async function openEmbeddedDatabase(dataDir: string, log: Logger, options: OpenOptions = {}): Promise<Database> {
  try {
    const embedded = await EmbeddedPostgres.start({ dataDir, log, maxConnections: 200 });
    return new EmbeddedDatabase(embedded.socketDir, embedded, `embedded PostgreSQL ${embedded.version} (PGlite) in ${embedded.dataDir}`, log);
  } catch (err) {
    if (!(err instanceof DataDirInUseError) || !options.attach) throw err;
    return new EmbeddedDatabase(err.holder.socketDir, null, `embedded PostgreSQL served by process ${err.holder.pid} (${resolve(dataDir)})`, log);
  }
}

/** The server named by DATABASE_URL (nothing to start). */
export function serverDatabase(config: Config): Database {
  return new ServerDatabase(config);
}

class ServerDatabase implements Database {
  readonly kind = 'server';
  readonly supportsCopy = true;
  readonly shared = true;
  readonly description: string;
  private readonly ownerUrl: string;
  private readonly serviceUrls: Record<ServiceDbRole, string>;
  private readonly connectTimeoutMs: number;

  constructor(config: Config) {
    this.connectTimeoutMs = config.DATABASE_CONNECT_TIMEOUT_MS;
    if (!config.DATABASE_URL || !config.serviceDatabaseUrls) throw new Error('no DATABASE_URL: the server database needs one');
    this.ownerUrl = config.DATABASE_URL;
    this.serviceUrls = config.serviceDatabaseUrls;
    const url = new URL(this.ownerUrl);
    this.description = `PostgreSQL at ${url.host}${url.pathname}`;
  }

  servicePool(role: ServiceDbRole, max: number): Pool {
    return createPool(this.serviceUrls[role], max, `fieldops-${role}`, this.connectTimeoutMs);
  }

  serviceClient(role: ServiceDbRole, applicationName: string): pg.Client {
    return new pg.Client({ connectionString: this.serviceUrls[role], application_name: applicationName, connectionTimeoutMillis: this.connectTimeoutMs });
  }

  ownerClient(): pg.Client {
    return new pg.Client({ connectionString: this.ownerUrl });
  }

  ownerPool(max: number): Pool {
    return createPool(this.ownerUrl, max, 'fieldops-owner', this.connectTimeoutMs);
  }

  async close(): Promise<void> {}
}

/**
 * The embedded database: every connection logs in as its one user to one shared session, and the
 * session-scoped clients give each transaction its role (docs/design.md, "Two commands: embedded
 * PostgreSQL and the in-process bus"). `server` is null when another process serves it (attached).
 */
class EmbeddedDatabase implements Database {
  readonly kind = 'embedded';
  readonly supportsCopy = false;
  readonly shared = false;
  private readonly notices = new NoticeRelay();
  private readonly clients = new Map<string, typeof pg.Client>();

  constructor(private readonly socketDir: string, private readonly server: EmbeddedPostgres | null, readonly description: string, private readonly log: Logger) {
    // Notices of statements run in-process (not through the socket) reach PGlite's own listeners.
    server?.db.onNotification((channel, payload) => this.notices.deliver({ channel, payload, processId: 0 }, null));
  }

  private clientClass(role: string): typeof pg.Client {
    let Client = this.clients.get(role);
    if (!Client) {
      Client = sessionScopedClient({
        role,
        confined: role !== EMBEDDED_USER,
        notices: this.notices,
        onSlowStatement: (asRole, statement, waitedMs) => this.log.warn({ role: asRole, statement, waited_ms: waitedMs },
          'embedded database: a statement is still waiting — behind a transaction of another connection that may be waiting for it'),
      });
      this.clients.set(role, Client);
    }
    return Client;
  }

  private pool(role: string, max: number, applicationName: string): Pool {
    // Connections are kept (no idle timeout): each one's named statements live in the shared session.
    const pool = new pg.Pool({ ...embeddedConnection(this.socketDir), Client: this.clientClass(role), max, application_name: applicationName, idleTimeoutMillis: 0 });
    hearConnectionErrors(pool);
    return pool;
  }

  servicePool(role: ServiceDbRole, max: number): Pool {
    return this.pool(SERVICE_DB_ROLES[role], max, `fieldops-${role}`);
  }

  serviceClient(role: ServiceDbRole, applicationName: string): pg.Client {
    const Client = this.clientClass(SERVICE_DB_ROLES[role]);
    return new Client({ ...embeddedConnection(this.socketDir), application_name: applicationName });
  }

  ownerClient(): pg.Client {
    const Client = this.clientClass(EMBEDDED_USER);
    return new Client(embeddedConnection(this.socketDir));
  }

  ownerPool(max: number): Pool {
    return this.pool(EMBEDDED_USER, max, 'fieldops-owner');
  }

  async close(): Promise<void> {
    await this.server?.close();
  }
}
