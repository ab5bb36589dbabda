import type pg from 'pg';

/** The part of pg's connection a COPY writes to (its typings do not list the copy messages). */
interface CopyConnection {
  stream: { cork?: () => void; uncork?: () => void };
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/**
 * `COPY … FROM STDIN` with its data in the same write as the Query message: one round trip per batch instead of
 * two. pg-copy-streams holds the data until the server's CopyInResponse, and on a busy ingest event loop that
 * wait was most of a commit (pg_stat_activity under the single-fix bench: backends mostly in `ClientRead` inside
 * the COPY). The protocol allows it (PostgreSQL docs, "Message Flow", "COPY Operations"): the server reads the
 * CopyData as soon as it enters copy-in mode; if the COPY fails, "any subsequent CopyData, CopyDone, or CopyFail
 * messages issued by the frontend will simply be dropped", and outside copy-in mode (a statement before the COPY
 * in the same Query failed) the backend ignores them too (postgres.c, the 'c'/'d'/'f' cases).
 *
 * `client.query(copy)` then `await copy.done`: resolves once the server is ready for the next query, rejects
 * with the server's error (the connection stays usable) or a connection error.
 */
export class PipelinedCopy implements pg.Submittable {
  readonly done: Promise<void>;
  /** Set by the client when it times statements (`query_timeout`): told the outcome, as with any query. */
  callback?: (err: Error | null) => void;
  private settle!: (err: Error | null) => void;

  constructor(private readonly text: string, private readonly data: Buffer) {
    this.done = new Promise((resolve, reject) => {
      let settled = false;
      this.settle = (err) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
        this.callback?.(err);
      };
    });
  }

  submit(connection: pg.Connection): void {
    const wire = connection as unknown as CopyConnection;
    wire.stream.cork?.();
    try {
      wire.query(this.text);
      wire.sendCopyFromChunk(this.data);
      wire.endCopyFrom();
    } finally {
      wire.stream.uncork?.();
    }
  }

  handleReadyForQuery(): void {
    this.settle(null);
  }

  handleError(err: Error): void {
    this.settle(err);
  }

  // The statements' own answers (the leading INSERT's and the COPY's completion, the copy-in notice) carry nothing we need.
  handleCopyInResponse(): void {}
  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}
