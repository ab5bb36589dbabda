import type { Logger } from '../services/shared/log.js';
import { pgErrorCode } from '../services/shared/db.js';
import type { Fix, Punch } from './decode.js';
import { PositionColumns, type DeviceRef, type PunchRow } from './rows.js';

/**
 * Called once per message, in the order messages were added, after the batch holding it is committed.
 * `failedRows` counts rows the database refused (a poison row isolated after a data error); 0 otherwise.
 * A context and a tag instead of a closure per message: the MQTT path adds ~10^5 messages a second.
 */
export type Settle<C> = (ctx: C, tag: number, failedRows: number) => void;

/** What a committed batch hands on (stream, device state): the rows, and per row its new id or null (duplicate). */
export interface CommittedBatch {
  /** The batch's place in cut order (see Batcher.cut): its provisional stream gaps carry it. */
  cutKey: number;
  positions: PositionColumns;
  positionIds: (string | null)[];
  punches: PunchRow[];
  punchIds: (string | null)[];
}

/**
 * Where batches are written. Each insert commits, with its rows, a provisional stream gap keyed by `cutKey`
 * (services/ingest/stream-publisher.ts), so that rows committed and never appended are found again.
 */
export interface BatchStore {
  insertPositions(rows: PositionColumns, cutKey: number): Promise<(string | null)[]>;
  insertPunches(rows: PunchRow[], cutKey: number): Promise<(string | null)[]>;
  existingPositionIds(deviceIds: string[], tsMs: number[]): Promise<(string | null)[]>;
  existingPunchIds(deviceIds: string[], tsMs: number[]): Promise<(string | null)[]>;
}

export interface BatcherOptions {
  maxRows: number;
  maxMs: number;
  /** Batches committing at once, each on its own connection: one fills while another commits. */
  maxInFlight: number;
  /** Rows held (open, queued, committing) past which `pressure` turns on; it turns off below half of it. */
  maxPendingRows: number;
  store: BatchStore;
  onCommitted(batch: CommittedBatch): void;
  onPressure(on: boolean): void;
  log: Logger;
  metrics?: { observeCommit(seconds: number, rows: number, duplicates: number): void; commitRetry(): void };
}

const enum MessageKind { Positions, Punch, Marker }

class Batch {
  readonly positions = new PositionColumns();
  readonly punches: PunchRow[] = [];
  readonly settles: Settle<unknown>[] = [];
  readonly contexts: unknown[] = [];
  readonly tags: number[] = [];
  readonly kinds: MessageKind[] = [];
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  state: 'open' | 'queued' | 'running' | 'done' = 'open';
  cutKey = 0;
  failed: number[] | null = null;
  positionIds: (string | null)[] = [];
  punchIds: (string | null)[] = [];

  get rows(): number {
    return this.positions.length + this.punches.length;
  }

  get messages(): number {
    return this.tags.length;
  }

  addMessage(kind: MessageKind, start: number, end: number, settle: Settle<unknown> | null, ctx: unknown, tag: number): void {
    this.kinds.push(kind);
    this.starts.push(start);
    this.ends.push(end);
    this.settles.push(settle ?? noSettle);
    this.contexts.push(ctx);
    this.tags.push(tag);
  }
}

const noSettle: Settle<unknown> = () => {};

/** Thrown into retry loops once `close()` has given up waiting for the database. */
class BatcherAbandoned extends Error {}

/**
 * Collects rows from every transport and commits them in batches: a batch is cut at `maxRows` rows or `maxMs`
 * after its first row, and while every connection is busy it keeps filling (so batches grow with load instead
 * of queueing). Batches may commit concurrently, but they settle strictly in the order they were cut, which keeps
 * MQTT's in-order PUBACK rule [MQTT-4.6.0-2] and the streams' per-shard order. A failed commit is retried with
 * backoff until it succeeds (the database being down keeps QoS 1 messages unacknowledged, as the device contract requires),
 * except data errors, which are narrowed down to the offending message so that one bad row cannot block the rest.
 */
export class Batcher {
  private open = new Batch();
  private readonly pending: Batch[] = []; // cut, in order: queued, running or done-but-waiting for an earlier one
  private running = 0;
  private pendingRows = 0;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private due = false;
  private pressure = false;
  private abandoned = false;
  private idleWaiters: (() => void)[] = [];
  private lastCutKey = 0;

  constructor(private readonly options: BatcherOptions) {}

  get underPressure(): boolean {
    return this.pressure;
  }

  get heldRows(): number {
    return this.pendingRows;
  }

  addFixes<C>(device: DeviceRef, fixes: Fix[], settle: Settle<C> | null, ctx: C, tag: number): void {
    const batch = this.open;
    const start = batch.positions.length;
    for (let i = 0; i < fixes.length; i++) batch.positions.push(device, fixes[i]!);
    batch.addMessage(MessageKind.Positions, start, batch.positions.length, settle as Settle<unknown>, ctx, tag);
    this.added(fixes.length);
  }

  addPunch<C>(device: DeviceRef, punch: Punch, settle: Settle<C> | null, ctx: C, tag: number): void {
    const batch = this.open;
    const start = batch.punches.length;
    batch.punches.push({ ...punch, tenantId: device.tenantId, deviceId: device.id, siteId: device.siteId });
    batch.addMessage(MessageKind.Punch, start, start + 1, settle as Settle<unknown>, ctx, tag);
    this.added(1);
  }

  /** A message with nothing to store (refused) that must still be answered after everything added before it. */
  addMarker<C>(settle: Settle<C>, ctx: C, tag: number): void {
    if (this.open.messages === 0 && this.pending.length === 0) {
      settle(ctx, tag, 0);
      return;
    }
    this.open.addMessage(MessageKind.Marker, 0, 0, settle as Settle<unknown>, ctx, tag);
    this.added(0);
  }

  private added(rows: number): void {
    this.pendingRows += rows;
    if (!this.pressure && this.pendingRows > this.options.maxPendingRows) this.setPressure(true);
    if (this.open.rows >= this.options.maxRows) {
      this.cut();
      this.dispatch();
    } else if (this.timer === null && this.immediate === null && !this.due) {
      if (this.options.maxMs === 0) this.immediate = setImmediate(this.onTimer);
      else this.timer = setTimeout(this.onTimer, this.options.maxMs);
    }
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.immediate = null;
    if (this.open.messages === 0) return;
    if (this.running < this.options.maxInFlight && !this.pending.some((b) => b.state === 'queued')) {
      this.cut();
      this.dispatch();
    } else {
      this.due = true; // cut when a connection frees up: the batch keeps growing meanwhile
    }
  };

  /**
   * Cut keys grow with every cut, in microseconds of the wall clock where it allows (so that the gaps of a run
   * that died sort before those of the run after it), by one where two cuts fall in the same microsecond.
   */
  private cut(): void {
    if (this.open.messages === 0) return;
    this.lastCutKey = Math.max(Date.now() * 1000, this.lastCutKey + 1);
    this.open.cutKey = this.lastCutKey;
    this.open.state = 'queued';
    this.pending.push(this.open);
    this.open = new Batch();
    this.due = false;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
  }

  private dispatch(): void {
    while (this.running < this.options.maxInFlight) {
      let next = this.pending.find((b) => b.state === 'queued');
      if (!next && this.due && this.open.messages > 0) {
        this.cut();
        next = this.pending[this.pending.length - 1];
      }
      if (!next) return;
      next.state = 'running';
      this.running++;
      void this.commit(next).then(() => {
        next!.state = 'done';
        this.running--;
        // The next batch's commit goes out before this one's settling work (PUBACKs, the stream's encoding).
        this.dispatch();
        this.settleInOrder();
      }, () => {
        this.running--; // abandoned at close: its messages stay unacknowledged, devices resend them
      });
    }
  }

  private async commit(batch: Batch): Promise<void> {
    if (batch.rows === 0) return;
    const started = process.hrtime.bigint();
    if (batch.positions.length > 0) {
      try {
        batch.positionIds = await this.storePositions(batch.positions, batch.cutKey);
      } catch (err) {
        if (err instanceof BatcherAbandoned) throw err;
        await this.commitIsolating(batch, MessageKind.Positions);
      }
    }
    if (batch.punches.length > 0) {
      try {
        batch.punchIds = await this.storePunches(batch.punches, batch.cutKey);
      } catch (err) {
        if (err instanceof BatcherAbandoned) throw err;
        await this.commitIsolating(batch, MessageKind.Punch);
      }
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const duplicates = countNull(batch.positionIds) + countNull(batch.punchIds);
    this.options.metrics?.observeCommit(seconds, batch.rows, duplicates);
  }

  private async storePositions(rows: PositionColumns, cutKey: number): Promise<(string | null)[]> {
    const store = this.options.store;
    const attempt = await this.withRetry(() => store.insertPositions(rows, cutKey));
    if (!attempt.retried) return attempt.value;
    return this.recoverIds(attempt.value, rows.deviceId, rows.tsMs, (d, t) => store.existingPositionIds(d, t));
  }

  private async storePunches(rows: PunchRow[], cutKey: number): Promise<(string | null)[]> {
    const store = this.options.store;
    const attempt = await this.withRetry(() => store.insertPunches(rows, cutKey));
    if (!attempt.retried) return attempt.value;
    return this.recoverIds(attempt.value, rows.map((r) => r.deviceId), rows.map((r) => r.tsMs),
      (d, t) => store.existingPunchIds(d, t));
  }

  /**
   * A retried insert cannot tell "stored by my lost first attempt" from "stored long ago": both come back as
   * conflicts. Looking their ids up and passing them on as new sends a true duplicate to the stream at worst
   * (consumers are idempotent), never drops a committed row from it.
   */
  private async recoverIds(ids: (string | null)[], deviceIds: string[], tsMs: number[],
    lookup: (deviceIds: string[], tsMs: number[]) => Promise<(string | null)[]>): Promise<(string | null)[]> {
    const missing: number[] = [];
    for (let i = 0; i < ids.length; i++) if (ids[i] === null) missing.push(i);
    if (missing.length === 0) return ids;
    const { value: found } = await this.withRetry(() => lookup(missing.map((i) => deviceIds[i]!), missing.map((i) => tsMs[i]!)));
    for (let k = 0; k < missing.length; k++) ids[missing[k]!] = found[k]!;
    return ids;
  }

  /** Retries until success; rejects only with a data error, which no retry would cure. */
  private async withRetry<T>(work: () => Promise<T>): Promise<{ value: T; retried: boolean }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return { value: await work(), retried: attempt > 0 };
      } catch (err) {
        if (isDataError(err)) throw err;
        if (this.abandoned) throw new BatcherAbandoned('ingest closed before the database came back');
        this.options.metrics?.commitRetry();
        const delayMs = Math.min(2000, 50 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
        if (attempt % 20 === 0) {
          this.options.log.warn({ err, attempt }, 'ingest commit failed; retrying (QoS 1 messages stay unacknowledged)');
        }
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  }

  /** After a data error: each message on its own, so that only the messages holding bad rows are refused. */
  private async commitIsolating(batch: Batch, kind: MessageKind.Positions | MessageKind.Punch): Promise<void> {
    if (kind === MessageKind.Positions) batch.positionIds = new Array(batch.positions.length).fill(null);
    else batch.punchIds = new Array(batch.punches.length).fill(null);
    batch.failed ??= new Array(batch.messages).fill(0);
    for (let m = 0; m < batch.messages; m++) {
      if (batch.kinds[m] !== kind) continue;
      const start = batch.starts[m]!;
      const end = batch.ends[m]!;
      try {
        if (kind === MessageKind.Positions) {
          const ids = await this.storePositions(batch.positions.slice(start, end), batch.cutKey);
          for (let i = 0; i < ids.length; i++) batch.positionIds[start + i] = ids[i]!;
        } else {
          batch.punchIds[start] = (await this.storePunches(batch.punches.slice(start, end), batch.cutKey))[0]!;
        }
      } catch (err) {
        if (err instanceof BatcherAbandoned) throw err;
        batch.failed[m] = end - start;
        this.options.log.warn({ err, rows: end - start }, 'ingest: the database refused a message\'s rows; dropped');
      }
    }
  }

  private settleInOrder(): void {
    while (this.pending.length > 0 && this.pending[0]!.state === 'done') {
      const batch = this.pending.shift()!;
      this.pendingRows -= batch.rows;
      // Answers first: what they queue (the PUBACK writes) is not held behind what the batch hands on.
      const failed = batch.failed;
      for (let m = 0; m < batch.messages; m++) {
        batch.settles[m]!(batch.contexts[m], batch.tags[m]!, failed ? failed[m]! : 0);
      }
      if (batch.rows > 0) {
        this.options.onCommitted({
          cutKey: batch.cutKey,
          positions: batch.positions,
          positionIds: batch.positionIds,
          punches: batch.punches,
          punchIds: batch.punchIds,
        });
      }
    }
    if (this.pressure && this.pendingRows <= this.options.maxPendingRows / 2) this.setPressure(false);
    if (this.pending.length === 0 && this.open.messages === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private setPressure(on: boolean): void {
    this.pressure = on;
    this.options.onPressure(on);
  }

  /** Commits and settles everything added so far. */
  flush(): Promise<void> {
    if (this.open.messages > 0) this.cut();
    this.dispatch();
    if (this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops the timers and flushes; gives up waiting after `timeoutMs` (unacknowledged QoS 1 messages are resent by devices). */
  async close(timeoutMs: number): Promise<boolean> {
    let timeout: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      this.flush().then(() => true),
      new Promise<boolean>((resolve) => { timeout = setTimeout(() => resolve(false), timeoutMs); }),
    ]);
    clearTimeout(timeout);
    if (!finished) this.abandoned = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    return finished;
  }
}

function countNull(ids: (string | null)[]): number {
  let n = 0;
  for (let i = 0; i < ids.length; i++) if (ids[i] === null) n++;
  return n;
}

/** Class 22 (data exception) and 23 (integrity constraint): the rows are wrong, not the connection. */
function isDataError(err: unknown): boolean {
  const code = pgErrorCode(err);
  return code !== undefined && (code.startsWith('22') || code.startsWith('23'));
}
