import type { AppendRequest, StreamBus } from '../shared/bus.js';
import type { Pool, PoolClient } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import {
  decodePositions, decodePunches, encodePositionAt, encodePunch, PositionEntries, positionEntries, punchEntries, recordEntries,
  shardKey, warnMalformed, type PositionRecord, type StreamNames,
} from '../shared/contracts/stream-codec.js';
import type { CommittedBatch } from '../../ingest/batcher.js';
import { positionOfGapRow, punchOfGapRow, type PositionGapRow, type PunchGapRow } from './gap-rows.js';
import type { IngestMetrics } from './metrics.js';

export interface StreamPublisherOptions {
  bus: StreamBus;
  /** This process run, as its batches' provisional gaps name it (GapMarker). */
  runId: number;
  pool: Pool;
  streams: StreamNames;
  maxLen: number;
  /** Entries kept per positions shard (their entries are larger and far more frequent). */
  positionMaxLen: number;
  log: Logger;
  metrics: IngestMetrics;
  /** Rows waiting for Redis past which they are recorded as a gap instead (bounded memory when Redis is slow). */
  maxQueuedRows?: number;
  appendTimeoutMs?: number;
  catchUpIntervalMs?: number;
}

type GapStream = 'positions' | 'punches';

interface Gap {
  id: string;
  stream: GapStream;
  first_id: string;
  last_id: string;
  recorded_at: Date;
  /** Left provisional by its run: its rows may have been appended already, just before that run ended. */
  provisional: boolean;
}

/**
 * Gaps this node may replay: permanent ones, provisional ones whose run has not deleted them in time, and
 * any other run's from before this one started (a node's next run replays what its predecessor left at once).
 */
const REPLAYABLE = '(expires_at is null or expires_at < now() or (run_id <> $1 and recorded_at < $2))';

/** How often a live node looks for gaps that a dead one left (they become replayable MARKER_TTL_S after their commit). */
const ADOPT_EVERY_TICKS = 5;
/** Stream entries this long before a provisional gap's commit are compared with its rows (clocks of PostgreSQL and Redis). */
const CLOCK_MARGIN_MS = 5000;
const DEDUPE_MAX_ENTRIES = 100_000;

const REPLAY_CHUNK_IDS = 5000;
// Any constant, as long as every ingest node uses the same one: one node replays gaps at a time.
const CATCH_UP_LOCK = 0x66_6f_67_70; // "fogp"

/**
 * Appends committed rows to the Redis streams, after the commit and off its path: positions to their shard
 * (`positions:{shardOf(shardKey(asset, device))}`), punches to `punches`, field `p` = a JSON array of records.
 *
 * Every batch commits with a provisional gap (`stream_gaps` row with `expires_at`, written by the telemetry
 * writer: GapMarker) covering its rows; once they are appended the publisher deletes it. One worker runs the
 * queue, so entries keep commit order per shard. When an append fails (Redis down or too slow), the batches'
 * gaps are made permanent and the publisher turns "degraded": later batches become gaps too (nothing newer
 * overtakes the missing rows), and a catch-up replays the gaps from the database (security-definer functions:
 * ingest cannot read the tables) in the order their batches were cut, deletes them, and turns live again once
 * none is left. A process killed between a commit and its append leaves its provisional gaps behind: its next
 * run replays them before appending anything new, and any node adopts them once they expire. Delivery is at
 * least once: a replay may repeat an entry whose append timed out but landed, or rows of a concurrent flush
 * that fall inside a gap's id range.
 */
export class StreamPublisher {
  private queue: CommittedBatch[] = [];
  private queuedRows = 0;
  private degraded = false;
  private catchUpDue = false;
  private working: Promise<void> | null = null;
  private kickQueued = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private appendedCuts: number[] = [];
  private sweeping: Promise<void> | null = null;
  private readonly startedAt = new Date();
  private readonly maxQueuedRows: number;
  private readonly appendTimeoutMs: number;

  constructor(private readonly options: StreamPublisherOptions) {
    this.maxQueuedRows = options.maxQueuedRows ?? 200_000;
    this.appendTimeoutMs = options.appendTimeoutMs ?? 5000;
  }

  get isDegraded(): boolean {
    return this.degraded;
  }

  /**
   * Gaps left by an earlier run (or another node) are replayed before anything new is appended: provisional
   * ones too, as this node's own earlier run left them.
   */
  async start(): Promise<void> {
    if (await this.replayableGaps()) {
      this.degraded = true;
      this.catchUpDue = true;
      this.kick();
    }
    const interval = this.options.catchUpIntervalMs ?? 1000;
    let ticks = 0;
    this.timer = setInterval(() => {
      // Gaps of a node that died before replaying them are picked up here (a cheap look every few ticks).
      if (!this.degraded && ++ticks % ADOPT_EVERY_TICKS === 0) void this.adoptOrphanedGaps();
      if (this.degraded) {
        this.catchUpDue = true;
        this.kick();
      }
    }, interval);
    this.timer.unref();
  }

  private async replayableGaps(): Promise<boolean> {
    const { rows } = await this.options.pool.query(`select 1 from stream_gaps where ${REPLAYABLE} limit 1`, [this.options.runId, this.startedAt]);
    return rows.length > 0;
  }

  private async adoptOrphanedGaps(): Promise<void> {
    if ((await this.replayableGaps().catch(() => false)) && !this.closed) this.degraded = true;
  }

  publish(batch: CommittedBatch): void {
    let rows = 0;
    for (const id of batch.positionIds) if (id !== null) rows++;
    for (const id of batch.punchIds) if (id !== null) rows++;
    if (rows === 0) {
      // Nothing new (retransmissions): a provisional gap written before its COPY found them goes all the same.
      this.appendedCuts.push(batch.cutKey);
      this.sweepMarkers();
      return;
    }
    this.queue.push(batch);
    this.queuedRows += rows;
    // In a microtask: the batch's PUBACKs, queued just before as microtasks too, are written first; encoding
    // and appending the batch (a few ms under load) no longer delays them, and it still starts in this turn.
    if (!this.kickQueued) {
      this.kickQueued = true;
      queueMicrotask(this.queuedKick);
    }
  }

  private readonly queuedKick = (): void => {
    this.kickQueued = false;
    this.kick();
  };

  private kick(): void {
    if (this.working || (this.closed && this.queue.length === 0)) return;
    this.working = this.work().finally(() => {
      this.working = null;
      if (this.queue.length > 0 || (this.catchUpDue && !this.closed)) this.kick();
    });
  }

  private async work(): Promise<void> {
    while (this.queue.length > 0 || (this.catchUpDue && !this.closed)) {
      if (this.catchUpDue && !this.closed) {
        this.catchUpDue = false;
        await this.catchUp();
        continue;
      }
      const rows = this.queuedRows;
      const batches = this.take();
      if (this.degraded || rows > this.maxQueuedRows) {
        await this.recordGaps(batches);
        continue;
      }
      try {
        await this.append(liveEntries(batches, this.options.streams, this.options.positionMaxLen));
      } catch (err) {
        this.options.log.warn({ err }, 'stream append failed; recording a gap and catching up from the database later');
        await this.recordGaps(batches);
        continue;
      }
      for (const batch of batches) this.appendedCuts.push(batch.cutKey);
      this.sweepMarkers();
    }
  }

  private take(): CommittedBatch[] {
    const batches = this.queue;
    this.queue = [];
    this.queuedRows = 0;
    return batches;
  }

  private async append(entries: AppendRequest[]): Promise<void> {
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.options.bus.append(entries, this.options.maxLen),
        new Promise((_, reject) => { timeout = setTimeout(() => reject(new Error('stream append timed out')), this.appendTimeoutMs); }),
      ]);
    } finally {
      clearTimeout(timeout);
    }
  }

  /** The provisional gaps of appended batches go, one statement at a time for all of them, off the append path. */
  private sweepMarkers(): void {
    if (this.sweeping || this.appendedCuts.length === 0) return;
    const cuts = this.appendedCuts;
    this.appendedCuts = [];
    this.sweeping = this.options.pool.query('delete from stream_gaps where run_id = $1 and cut_key = any($2::int8[])', [this.options.runId, cuts])
      .then(() => {}, async (err) => {
        // Tried again shortly; should this run end first, they expire and are replayed: a repeat, nothing lost.
        this.options.log.warn({ err, batches: cuts.length }, 'could not clear provisional stream gaps of appended batches; retrying');
        this.appendedCuts = cuts.concat(this.appendedCuts);
        if (!this.closed) await sleep(500);
      })
      .finally(() => {
        this.sweeping = null;
        this.sweepMarkers();
      });
  }

  /**
   * These batches' provisional gaps become permanent (replayable at once), until the database takes it. A gap
   * already gone was replayed by a node that adopted it: nothing is missing.
   */
  private async recordGaps(batches: CommittedBatch[]): Promise<void> {
    this.degraded = true;
    if (batches.length === 0) return;
    for (let attempt = 0; ; attempt++) {
      try {
        const { rows } = await this.options.pool.query<{ stream: GapStream }>(
          'update stream_gaps set expires_at = null where run_id = $1 and cut_key = any($2::int8[]) returning stream',
          [this.options.runId, batches.map((b) => b.cutKey)],
        );
        for (const { stream } of rows) this.options.metrics.streamGaps.inc({ stream });
        return;
      } catch (err) {
        if (attempt % 20 === 0) this.options.log.error({ err }, 'could not record a stream gap; retrying');
        await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
      }
    }
  }

  /**
   * Replays every gap, oldest ids first, then turns live. Batches committed meanwhile are turned into gaps
   * first, so that they are replayed after the older ones rather than appended ahead of them.
   */
  private async catchUp(): Promise<void> {
    let db: PoolClient | null = null;
    try {
      await this.options.bus.ping();
      db = await this.options.pool.connect();
      const { rows: [lock] } = await db.query<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [CATCH_UP_LOCK]);
      if (!lock?.ok) return; // another node is replaying; we stay degraded and look again shortly
      try {
        for (;;) {
          if (this.queue.length > 0) await this.recordGaps(this.take());
          // Cut order: ids come in blocks per process and do not follow commit order across batches.
          const { rows: gaps } = await db.query<Gap>(
            `select id, stream, first_id, last_id, recorded_at, expires_at is not null as provisional from stream_gaps
             where ${REPLAYABLE} order by cut_key, run_id, stream, first_id limit 100`, [this.options.runId, this.startedAt]);
          if (gaps.length === 0) break;
          for (const gap of gaps) await this.replay(db, gap);
        }
      } finally {
        await db.query('select pg_advisory_unlock($1)', [CATCH_UP_LOCK]).catch(() => {});
      }
      if (this.queue.length > 0) await this.recordGaps(this.take()); // raced in after the last look: next round
      else {
        this.degraded = false;
        this.options.log.info('stream caught up from the database; appending live again');
      }
    } catch (err) {
      this.options.log.debug({ err }, 'stream catch-up not possible yet');
    } finally {
      db?.release();
    }
  }

  /**
   * Appends one gap chunk by chunk; after each chunk the gap row shrinks, and goes once it is all appended. A
   * provisional gap's rows may have reached the stream just before their run ended (appended, gap not yet
   * deleted): those found in the stream since the gap's commit are not appended again.
   */
  private async replay(db: PoolClient, gap: Gap): Promise<void> {
    const last = Number(gap.last_id);
    let first = Number(gap.first_id);
    const fn = gap.stream === 'positions' ? 'stream_gap_positions' : 'stream_gap_punches';
    const streamed = new Map<string, Promise<Set<string>>>();
    const present = (stream: string) => {
      let ids = streamed.get(stream);
      if (!ids) streamed.set(stream, (ids = this.idsSince(stream, gap.recorded_at.getTime() - CLOCK_MARGIN_MS, gap.stream)));
      return ids;
    };
    while (first <= last) {
      const upTo = Math.min(last, first + REPLAY_CHUNK_IDS - 1);
      const { rows } = await db.query(`select * from ${fn}($1, $2)`, [first, upTo]);
      let entries: AppendRequest[];
      if (gap.stream === 'positions') {
        let records = (rows as PositionGapRow[]).map(positionOfGapRow);
        if (gap.provisional) records = await this.unstreamed(records, (r) => this.positionStream(r), present);
        entries = positionEntries(this.options.streams, records, this.options.positionMaxLen);
      } else {
        let records = (rows as PunchGapRow[]).map(punchOfGapRow);
        if (gap.provisional) records = await this.unstreamed(records, () => this.options.streams.punches, present);
        entries = punchEntries(this.options.streams, records);
      }
      if (entries.length > 0) await this.append(entries);
      this.options.metrics.streamReplayed.inc({ stream: gap.stream }, rows.length);
      if (upTo < last) await db.query('update stream_gaps set first_id = $2 where id = $1', [gap.id, upTo + 1]);
      else await db.query('delete from stream_gaps where id = $1', [gap.id]);
      first = upTo + 1;
    }
  }

  private positionStream(record: PositionRecord): string {
    const streams = this.options.streams;
    return streams.positionShard(streams.shardOf(shardKey(record.asset_id, record.device_id)));
  }

  /** The records whose ids are not among those `present` finds in their stream. */
  private async unstreamed<R extends { id: string }>(records: R[], streamOf: (record: R) => string,
    present: (stream: string) => Promise<Set<string>>): Promise<R[]> {
    const kept: R[] = [];
    for (const record of records) if (!(await present(streamOf(record))).has(record.id)) kept.push(record);
    return kept;
  }

  /** Ids of the records a stream holds since `sinceMs` (stream entry ids are Redis's clock in ms). */
  private async idsSince(stream: string, sinceMs: number, kind: GapStream): Promise<Set<string>> {
    const entries = await this.options.bus.range(stream, `${Math.max(0, Math.floor(sinceMs))}-0`, '+', DEDUPE_MAX_ENTRIES);
    const onMalformed = warnMalformed(this.options.log);
    const records = kind === 'positions' ? decodePositions(entries, onMalformed) : decodePunches(entries, onMalformed);
    return new Set(records.map((r) => r.id));
  }

  /** Appends (or records as gaps) what is queued, waiting at most `timeoutMs`. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.kick();
    const deadline = Date.now() + timeoutMs;
    while (this.working && Date.now() < deadline) {
      await Promise.race([this.working, sleep(Math.max(1, deadline - Date.now()))]);
    }
    while (this.sweeping && Date.now() < deadline) {
      await Promise.race([this.sweeping, sleep(Math.max(1, deadline - Date.now()))]);
    }
  }
}

/** The entries of committed batches: positions by shard (in commit order within each), punches to `punches`. */
function liveEntries(batches: CommittedBatch[], streams: StreamNames, positionMaxLen: number): AppendRequest[] {
  const positions = new PositionEntries(streams, positionMaxLen);
  const punches: string[] = [];
  for (const batch of batches) {
    const p = batch.positions;
    const ids = batch.positionIds;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id !== null) positions.add(p.assetId[i], p.deviceId[i], encodePositionAt(p, i, id));
    }
    for (let i = 0; i < batch.punchIds.length; i++) {
      const id = batch.punchIds[i];
      if (id === null || id === undefined) continue;
      const row = batch.punches[i]!;
      punches.push(encodePunch({
        id, tenant_id: row.tenantId, device_id: row.deviceId, site_id: row.siteId, ts_ms: row.tsMs,
        employee_ref: row.employeeRef, kind: row.kind, lat: row.lat, lon: row.lon, accuracy_m: row.accuracyM,
      }));
    }
  }
  return [...positions.entries(), ...recordEntries(streams.punches, punches)];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
