import pg from 'pg';

/**
 * The seam that makes one shared PostgreSQL session safe for many connections (docs/design.md,
 * "Two commands: embedded PostgreSQL and the in-process bus"). The embedded PGlite serves every
 * connection from ONE backend session: a `SET ROLE` or session-level setting made on one connection
 * is seen by the next, a named prepared statement of one collides with another's, and a NOTIFY is
 * delivered to whichever connection committed. A client made by `sessionScopedClient` therefore:
 *
 * - runs every statement inside a transaction that set its own role and cleared the tenant locally
 *   (`set local role …`, `set_config('app.tenant_id', '', true)`): an explicit `begin` gets them in the
 *   same round trip, and a statement outside a transaction gets a transaction of its own — so row-level
 *   security and the roles' privileges hold as on a server, whatever another connection left behind;
 * - gives its named prepared statements a per-connection name;
 * - relays notifications through a `NoticeRelay` to every client that has LISTENed on the channel.
 *
 * The pglite-socket multiplexer serializes transactions (another connection's statements wait until
 * `commit`), so the role set by one never leaks into another's statement.
 */

/** LISTEN/NOTIFY across the connections of one session: notices reach the committer, so they are relayed. */
export class NoticeRelay {
  private readonly listeners = new Map<string, Set<pg.Client>>();

  listen(channel: string, client: pg.Client): void {
    let clients = this.listeners.get(channel);
    if (!clients) this.listeners.set(channel, (clients = new Set()));
    clients.add(client);
  }

  /** Forgets the client's interest; true when no client listens on the channel any more. */
  unlisten(channel: string, client: pg.Client): boolean {
    const clients = this.listeners.get(channel);
    clients?.delete(client);
    if (clients?.size) return false;
    this.listeners.delete(channel);
    return true;
  }

  forget(client: pg.Client): void {
    for (const [channel, clients] of this.listeners) {
      clients.delete(client);
      if (clients.size === 0) this.listeners.delete(channel);
    }
  }

  channelsOf(client: pg.Client): string[] {
    return [...this.listeners].filter(([, clients]) => clients.has(client)).map(([channel]) => channel);
  }

  /** Hands a notice to the listeners of its channel; `receivedBy` already has it from the server. */
  deliver(notice: pg.Notification, receivedBy: pg.Client | null): void {
    for (const client of this.listeners.get(notice.channel) ?? []) {
      if (client !== receivedBy) client.emit('notification', notice);
    }
  }
}

export interface SessionScope {
  /** The role every transaction runs as (`set local role`); the owner is the session's superuser. */
  role: string;
  /** Refuse statements that change the role (every scope but the owner's). */
  confined: boolean;
  notices: NoticeRelay;
  /**
   * Told when a statement has not completed after SLOW_STATEMENT_MS. Transactions are serialized, so a
   * statement waits for any other connection's open transaction — forever when that transaction's code
   * awaits this statement (a transaction that calls the pool again): this names it.
   */
  onSlowStatement?: (role: string, text: string, waitedMs: number) => void;
}

export const SLOW_STATEMENT_MS = 10_000;

export class RoleChangeRefusedError extends Error {
  readonly code = '42501'; // insufficient_privilege, as a server would answer a confined login
  constructor(role: string) {
    super(`permission denied: ${role} may not change its role on the embedded database`);
  }
}

type Callback = (err: Error | null, result?: unknown) => void;
type QueryConfig = pg.QueryConfig & { name?: string };

const BEGIN = /^\s*(begin|start\s+transaction)\b[^;]*;?\s*$/i;
const END = /^\s*(commit|end|rollback|abort)\b(?!\s+(to|prepared)\b)[^;]*;?\s*$/i;
/** Statements PostgreSQL refuses inside a transaction block; only the owner issues them. */
const NO_TRANSACTION = /^\s*(vacuum|create\s+database|drop\s+database|alter\s+system|(create|drop)\s+index\s+concurrently|reindex\b.*\bconcurrently)\b/i;
const LISTEN = /^\s*(un)?listen\s+("[^"]+"|[\w*]+)\s*$/i;
/**
 * Role changes a service statement could make: the session user is PGlite's superuser, so PostgreSQL
 * itself would allow them. The services issue none; the seam refuses them all the same.
 */
const ROLE_CHANGE = /\b(set|reset)\s+((session|local)\s+)?(role|session\s+authorization|all)\b|\bset_config\s*\(\s*'(role|session_authorization)'/i;
const ROLE_SETTING = /^\s*(role|session_authorization)\s*$/i;

let nextClientId = 1;

/** A `pg.Client` class (for `new pg.Pool({ Client })` or direct use) whose statements run in the given scope. */
export function sessionScopedClient(scope: SessionScope): typeof pg.Client {
  const preamble = `set local role ${pg.escapeIdentifier(scope.role)}; select set_config('app.tenant_id', '', true)`;

  class SessionScopedClient extends pg.Client {
    private readonly clientId = nextClientId++;
    private inTransaction = false;
    /** Statements run one after another, so that transaction tracking follows the caller's order. */
    private tail: Promise<unknown> = Promise.resolve();

    constructor(config?: string | pg.ClientConfig) {
      super(config);
      // On the connection, not the client: callers may remove the client's 'notification' listeners.
      (this as unknown as { connection: NodeJS.EventEmitter }).connection.on('notification', (notice: pg.Notification) => {
        scope.notices.deliver(notice, this);
      });
      this.on('end', () => scope.notices.forget(this));
    }

    // Every overload of pg.Client#query lands here: (text|config, values?, callback?) or a Submittable.
    override query(...args: unknown[]): never {
      const [first] = args;
      if (first && typeof (first as { submit?: unknown }).submit === 'function') {
        // COPY streams and cursors keep the protocol to themselves; they must run inside an explicit transaction.
        return (super.query as (...a: unknown[]) => never)(...args);
      }
      let callback: Callback | undefined;
      if (typeof args[args.length - 1] === 'function') callback = args.pop() as Callback;
      const config: QueryConfig = typeof first === 'string' ? { text: first } : { ...(first as QueryConfig) };
      if (args[1] !== undefined) config.values = args[1] as unknown[];
      if (config.name) config.name = `${config.name}.${this.clientId}`;

      const result = this.tail.then(() => this.watched(config));
      this.tail = result.catch(() => {});
      if (!callback) return result as never;
      result.then((r) => callback(null, r), (err: Error) => callback(err));
      return undefined as never;
    }

    private async watched(config: QueryConfig): Promise<unknown> {
      if (!scope.onSlowStatement) return this.runScoped(config);
      const startedMs = Date.now();
      const timer = setTimeout(() => scope.onSlowStatement!(scope.role, (config.text ?? '').slice(0, 200), Date.now() - startedMs), SLOW_STATEMENT_MS);
      timer.unref();
      try {
        return await this.runScoped(config);
      } finally {
        clearTimeout(timer);
      }
    }

    private send(config: QueryConfig | string): Promise<pg.QueryResult> {
      return (super.query as (c: QueryConfig | string) => Promise<pg.QueryResult>)(config);
    }

    private async runScoped(config: QueryConfig, listensHandled = false): Promise<unknown> {
      const text = config.text ?? '';
      if (scope.confined && changesRole(config)) throw new RoleChangeRefusedError(scope.role);
      if (BEGIN.test(text) && !config.values?.length) {
        const results = (await this.send(`${text.replace(/;?\s*$/, '')}; ${preamble}`)) as unknown as pg.QueryResult[];
        this.inTransaction = true;
        return results[0];
      }
      if (END.test(text)) {
        try {
          return await this.send(config);
        } finally {
          this.inTransaction = false;
        }
      }
      if (!listensHandled && /^\s*(un)?listen\b/i.test(text)) return this.listenOrUnlisten(config);
      if (this.inTransaction || NO_TRANSACTION.test(text)) return this.send(config);
      // A statement on its own: a transaction of its own, in the scope.
      await this.send(`begin; ${preamble}`);
      try {
        const result = await this.send(config);
        await this.send('commit');
        return result;
      } catch (err) {
        await this.send('rollback').catch(() => {});
        throw err;
      }
    }

    /**
     * `listen`/`unlisten` are session-wide here: a listen is registered with the relay (and made on
     * the session), an unlisten only forgets this client unless no other client listens any more.
     * Several statements separated by `;` are taken one by one (the outbox relay sends
     * `unlisten …; select pg_advisory_unlock_all()`).
     */
    private async listenOrUnlisten(config: QueryConfig): Promise<unknown> {
      const forward: string[] = [];
      for (const statement of (config.text ?? '').split(';').map((s) => s.trim()).filter(Boolean)) {
        const match = LISTEN.exec(statement);
        if (!match) {
          forward.push(statement);
          continue;
        }
        const [, un, rawChannel] = match;
        const channels = rawChannel === '*' ? scope.notices.channelsOf(this) : [channelName(rawChannel!)];
        if (!un) {
          scope.notices.listen(channels[0]!, this);
          forward.push(statement);
          continue;
        }
        // The session keeps listening while another client does; the relay stops delivering to this one.
        for (const channel of channels) {
          if (scope.notices.unlisten(channel, this)) forward.push(`unlisten ${pg.escapeIdentifier(channel)}`);
        }
      }
      if (forward.length === 0) return { command: 'UNLISTEN', rowCount: null, rows: [], fields: [] };
      return this.runScoped({ ...config, text: forward.join('; ') }, true);
    }
  }

  return SessionScopedClient as unknown as typeof pg.Client;
}

/** A channel as PostgreSQL names it: quoted names as written, others folded to lower case. */
function channelName(raw: string): string {
  return raw.startsWith('"') ? raw.slice(1, -1) : raw.toLowerCase();
}

function changesRole({ text = '', values }: QueryConfig): boolean {
  if (ROLE_CHANGE.test(text)) return true;
  return /set_config/i.test(text) && (values ?? []).some((v) => typeof v === 'string' && ROLE_SETTING.test(v));
}
