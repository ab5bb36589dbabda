import pg from 'pg';
import { rowBuilderFor, type ColumnDescription, type RowBuilder } from './row-builders.js';

/** A statement written ahead of another, its answer dropped (docs/design.md, "Cost of a request"). */
export interface LeadingStatement {
  /** Named: prepared on a connection the first time, then only bound and executed. */
  name?: string;
  text: string;
  values?: (string | null)[];
}

/** What the client calls on the statement it is waiting for (pg's Query has them; its typings do not say so). */
interface ProtocolHandlers {
  text?: string;
  name?: string;
  values?: unknown;
  handleRowDescription(msg: unknown): void;
  handleDataRow(msg: unknown): void;
  handleCommandComplete(msg: unknown, connection: pg.Connection): void;
  handleEmptyQuery(connection: pg.Connection): void;
  handleError(err: Error, connection: pg.Connection): void;
  handleReadyForQuery(connection: pg.Connection): void;
  handlePortalSuspended(connection: pg.Connection): void;
  handleCopyInResponse(connection: pg.Connection): void;
  handleCopyData(msg: unknown, connection: pg.Connection): void;
  submit(connection: pg.Connection): Error | null | undefined;
  queryMode?: string;
  types?: unknown;
  /** pg.Query's result so far and its record of a row that could not be parsed (reported at the Sync). */
  _result: { fields: unknown[]; rows: unknown[]; _types?: unknown };
  _canceledDueToError: unknown;
}

interface ProtocolConnection {
  stream: { cork?: () => void; uncork?: () => void };
  parsedStatements: Record<string, string>;
  submittedNamedStatements: Record<string, string>;
  parse(config: { text: string; name: string; types: number[] }): void;
  bind(config: { portal: string; statement: string; values: (string | null)[] }): void;
  execute(config: { portal: string; rows: number }): void;
}

/**
 * One statement preceded by `leading` ones in the same write and the same extended-protocol Sync,
 * so the whole costs one round trip: `client.query(new PipelinedStatement([begin, setTenant], config))`.
 *
 * Until the Sync, the server runs everything in one implicit transaction (unless a leading `begin`
 * opens an explicit one, which then stays open): a `set_config(…, true)` among the leading statements
 * holds for the statement and ends with it. An error anywhere makes the server skip the rest up to
 * the Sync and roll the implicit transaction back; the caller sees that error.
 *
 * The client routes every protocol message to the statement it waits for; this one swallows the
 * leading statements' answers (rows and completions) and hands the rest to a plain `pg.Query`. The
 * client records a completed parse under the waiting statement's `name` and `text`: these follow the
 * answers, naming each leading statement in turn and then the query.
 */
export class PipelinedStatement<R extends pg.QueryResultRow = pg.QueryResultRow> implements pg.Submittable {
  readonly result: Promise<pg.QueryResult<R>>;
  /** Set by the client when it times statements (`query_timeout`): told the outcome, as with any query. */
  callback?: (err: Error | null, result?: pg.QueryResult<R>) => void;
  private readonly query: ProtocolHandlers;
  /** Leading statements answered so far. */
  private answered = 0;
  /** Whether rows may be built here (row-builders.ts) rather than by pg: text rows as objects, pg's own parsers. */
  private readonly ownRows: boolean;
  /** The statement's row builder, once its columns are described; null: pg.Query builds the rows. */
  private buildRow: RowBuilder | null = null;

  constructor(private readonly leading: LeadingStatement[], config: pg.QueryConfig) {
    let settle!: (err: Error | null, result?: pg.QueryResult<R>) => void;
    this.result = new Promise((resolve, reject) => {
      let settled = false;
      settle = (err, result) => {
        // pg.Query can answer twice (a failed bind, then the Sync's ReadyForQuery): the first counts.
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve(result!);
        this.callback?.(err, result);
      };
    });
    this.query = newQuery(config, settle);
    const { rowMode, binary } = config as { rowMode?: unknown; binary?: unknown };
    this.ownRows = !config.types && !rowMode && !binary;
  }

  private get inLeading(): boolean {
    return this.answered < this.leading.length;
  }

  get name(): string | undefined {
    return this.inLeading ? this.leading[this.answered]!.name : this.query.name;
  }

  get text(): string | undefined {
    return this.inLeading ? this.leading[this.answered]!.text : this.query.text;
  }

  submit(connection: pg.Connection): Error | null {
    const wire = connection as unknown as ProtocolConnection;
    const refused = this.refusal(wire);
    if (refused) return refused;
    wire.stream.cork?.();
    try {
      for (const { name = '', text, values = [] } of this.leading) {
        if (!name || wire.parsedStatements[name] !== text) wire.parse({ text, name, types: [] });
        wire.bind({ portal: '', statement: name, values });
        wire.execute({ portal: '', rows: 0 });
      }
      // Writes Parse (unless prepared on this connection), Bind, Describe, Execute and the Sync.
      return this.query.submit(connection) ?? null;
    } finally {
      wire.stream.uncork?.();
    }
  }

  /** pg.Query's own refusals, checked before anything is written (afterwards the leading statements would hang without a Sync). */
  private refusal(wire: ProtocolConnection): Error | null {
    const { name, text, values } = this.query;
    if (typeof text !== 'string') return new Error('A pipelined statement needs its text.');
    if (values !== undefined && !Array.isArray(values)) return new Error('Query values must be an array');
    const previous = name ? wire.parsedStatements[name] ?? wire.submittedNamedStatements[name] : undefined;
    if (previous && previous !== text) return new Error(`Prepared statements must be unique - '${name}' was used for a different statement`);
    return null;
  }

  handleRowDescription(msg: unknown): void {
    // The leading statements' rows are dropped, and so are their descriptions.
    if (this.inLeading) return;
    const columns = (msg as { fields: ColumnDescription[] }).fields;
    this.buildRow = this.ownRows ? rowBuilderFor(this.query.text!, columns, pg.types) : null;
    if (this.buildRow) this.query._result.fields = columns;
    else this.query.handleRowDescription(msg);
  }

  handleDataRow(msg: unknown): void {
    if (this.inLeading) return;
    if (!this.buildRow) {
      this.query.handleDataRow(msg);
      return;
    }
    // As pg.Query does: a value its parser refuses fails the statement once the server is done with it.
    if (this.query._canceledDueToError) return;
    try {
      this.query._result.rows.push(this.buildRow((msg as { fields: (string | null)[] }).fields));
    } catch (err) {
      this.query._canceledDueToError = err;
    }
  }

  handleCommandComplete(msg: unknown, connection: pg.Connection): void {
    if (this.inLeading) this.answered++;
    else this.query.handleCommandComplete(msg, connection);
  }

  handleEmptyQuery(connection: pg.Connection): void {
    this.query.handleEmptyQuery(connection);
  }

  handleError(err: Error, connection: pg.Connection): void {
    if (this.inLeading) {
      // A leading statement failed: the server skipped the rest, so the statement was never prepared.
      const { name } = this.query;
      if (name) delete (connection as unknown as ProtocolConnection).submittedNamedStatements[name];
    }
    this.query.handleError(err, connection);
  }

  handleReadyForQuery(connection: pg.Connection): void {
    this.query.handleReadyForQuery(connection);
  }

  handlePortalSuspended(connection: pg.Connection): void {
    this.query.handlePortalSuspended(connection);
  }

  handleCopyInResponse(connection: pg.Connection): void {
    this.query.handleCopyInResponse(connection);
  }

  handleCopyData(msg: unknown, connection: pg.Connection): void {
    this.query.handleCopyData(msg, connection);
  }
}

/** What a plain statement's config holds: it can take the quick construction below. */
const PLAIN_KEYS = new Set(['text', 'values', 'name']);

/**
 * A pg.Query for `config`, in extended protocol always (a simple Query message may not follow a Bind/Execute
 * before the Sync). pg copies a config object with its property descriptors, which cost a GET more than the
 * rest of this class; a plain statement (text, values, name) is made from its text, as pg makes a string
 * one, and given the same settings after.
 */
function newQuery(config: pg.QueryConfig, callback: (err: Error | null, result?: never) => void): ProtocolHandlers {
  for (const key in config) {
    if (!PLAIN_KEYS.has(key)) {
      const options = { ...config, types: config.types ?? pg.types, queryMode: 'extended', callback };
      return new pg.Query(options as pg.QueryConfig) as unknown as ProtocolHandlers;
    }
  }
  const query = new pg.Query(config.text, config.values, callback as never) as unknown as ProtocolHandlers;
  query.name = config.name;
  query.queryMode = 'extended';
  query.types = pg.types;
  query._result._types = pg.types;
  return query;
}
