import { setTimeout as sleep } from 'node:timers/promises';
import type { StreamBus, StreamEntry } from '../shared/bus.js';
import type { Coordination } from '../shared/coordination.js';
import type { Pool } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import { decodePositions, warnMalformed, type PositionRecord, type StreamNames } from '../shared/contracts/stream-codec.js';
import { assetKey, newAssetState, type AssetState } from './asset-state.js';
import { AssetStateStore } from './asset-state-store.js';
import type { NewEvent } from '../shared/contracts/events.js';
import { insertEvents } from '../shared/outbox.js';
import type { FenceCache } from './fence-cache.js';
import { evaluateFix, type Transition } from './fence-evaluator.js';
import { transitionEvents } from './geofence-events.js';
import { geofenceMetrics } from './metrics.js';
import { ShardLeases } from './shard-leases.js';

export interface PositionEvaluatorOptions {
  group: string;
  workerId: string;
  shards: number;
  prefix: string;
  leaseMs: number;
  blockMs: number;
  batchSize: number;
  /**
   * Failure injection for tests: runs after a batch's events are committed (with how many were
   * new) and before its states are saved and its entries acknowledged.
   */
  afterEventsCommitted?: (newEvents: number) => Promise<void> | void;
}

/** The evaluator owns `bus` and `coordination` and closes them when it stops. */
export interface PositionEvaluatorDeps {
  /** A bus of its own: its blocking reads must not queue behind another loop's. */
  bus: StreamBus;
  /** For leases and state (never blocked). */
  coordination: Coordination;
  pool: Pool;
  fences: FenceCache;
  streams: StreamNames;
  log: Logger;
}

interface ShardWork {
  shard: number;
  stream: string;
  ids: string[];
  touched: Map<string, AssetState>;
}

/**
 * Evaluates committed fixes from the `positions:{n}` shards this worker holds a lease on
 * (see ShardLeases), in order per shard, through the consumer group. Per read batch: evaluate in
 * memory, insert the batch's events in one statement, save the touched assets' states in one
 * pipeline, then acknowledge. A crash anywhere before the ack replays the entries from the last
 * saved state; the replay yields the same transitions, whose idempotency keys make them no-ops.
 */
export class PositionEvaluator {
  private readonly leases: ShardLeases;
  private readonly stateStore: AssetStateStore;
  private readonly shardOfStream = new Map<string, number>();
  /** Per held shard, its assets' states; present only once loaded (in sync with the saved ones). */
  private readonly states = new Map<number, Map<string, AssetState>>();
  private readonly needsSync = new Set<number>();
  private readonly surplus = new Set<number>();
  private leaseTimer: NodeJS.Timeout | null = null;
  private leaseTick: Promise<void> | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private killed = false;
  private lastIdleClaimAt = 0;
  private closing: Promise<void> | null = null;
  /** This evaluator's own counts (the process-wide ones are in geofenceMetrics). */
  readonly stats = { fixes: 0, outOfOrder: 0, events: 0, batches: 0 };
  private readonly metrics = geofenceMetrics();
  private readonly reportHeldShards = () => this.leases.heldShards().length;

  constructor(private readonly deps: PositionEvaluatorDeps, private readonly options: PositionEvaluatorOptions) {
    this.leases = new ShardLeases(deps.coordination, options, deps.log);
    this.stateStore = new AssetStateStore(deps.coordination, options.prefix);
    for (let n = 0; n < options.shards; n++) this.shardOfStream.set(deps.streams.positionShard(n), n);
  }

  get workerId(): string {
    return this.options.workerId;
  }

  heldShards(): number[] {
    return this.leases.heldShards();
  }

  async start(): Promise<void> {
    for (const stream of this.shardOfStream.keys()) await this.deps.bus.ensureGroup(stream, this.options.group, '0');
    this.metrics.heldShards.add(this.reportHeldShards);
    await this.renewLeases();
    this.leaseTimer = setInterval(() => void this.renewLeases(), Math.max(50, Math.floor(this.options.leaseMs / 3)));
    this.loop = this.run();
  }

  private renewLeases(): Promise<void> {
    this.leaseTick ??= (async () => {
      try {
        const { acquired, lost, surplus } = await this.leases.tick();
        // Losses first: a shard whose lease lapsed and was taken again in this same tick (Redis restarted
        // empty, or stalled past a lease) is in both lists, and must end up resynced, not forgotten.
        for (const shard of lost) {
          this.states.delete(shard);
          this.needsSync.delete(shard);
        }
        for (const shard of acquired) this.needsSync.add(shard);
        for (const shard of surplus) this.surplus.add(shard);
      } catch (err) {
        if (!this.killed) this.deps.log.warn({ err }, 'shard lease renewal failed');
      } finally {
        this.leaseTick = null;
      }
    })();
    return this.leaseTick;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.giveBackSurplus();
        await this.syncShards();
        const active = this.activeShards();
        if (active.length === 0) {
          await sleep(Math.min(this.options.blockMs, 100));
          continue;
        }
        await this.claimIdleEntries(active);
        const batches = await this.deps.bus.readGroup(this.options.group, this.options.workerId,
          active.map((s) => this.deps.streams.positionShard(s)), { blockMs: this.options.blockMs, count: this.options.batchSize });
        if (this.killed) return;
        if (batches.length) await this.processBatch(batches.map((b) => ({ stream: b.stream, entries: b.entries })));
      } catch (err) {
        if (this.killed) return;
        this.deps.log.warn({ err }, 'position evaluation failed; resyncing and retrying');
        await sleep(500);
      }
    }
  }

  private activeShards(): number[] {
    return this.leases.heldShards().filter((s) => this.states.has(s) && !this.surplus.has(s) && this.leases.isHeld(s));
  }

  private async giveBackSurplus(): Promise<void> {
    for (const shard of this.surplus) {
      this.surplus.delete(shard);
      this.states.delete(shard);
      this.needsSync.delete(shard);
      await this.leases.release(shard);
    }
  }

  /**
   * A shard just taken (or whose last batch failed): load its saved states, then replay every
   * entry still pending in the group — the previous owner's unacknowledged ones — before new ones.
   */
  private async syncShards(): Promise<void> {
    for (const shard of [...this.needsSync]) {
      if (this.stopping) return;
      if (!this.leases.isHeld(shard)) continue;
      this.states.set(shard, await this.stateStore.load(shard));
      const stream = this.deps.streams.positionShard(shard);
      for (;;) {
        const entries = await this.deps.bus.claimIdle(stream, this.options.group, this.options.workerId, 0, this.options.batchSize);
        this.throwIfKilled();
        if (entries.length === 0) break;
        await this.processBatch([{ stream, entries }]);
      }
      this.needsSync.delete(shard);
    }
  }

  /**
   * Entries read by a worker that lost its lease after reading them sit in its pending list; the
   * owner takes them once they are idle longer than a lease.
   */
  private async claimIdleEntries(active: number[]): Promise<void> {
    const now = Date.now();
    if (now - this.lastIdleClaimAt < this.options.leaseMs) return;
    this.lastIdleClaimAt = now;
    for (const shard of active) {
      const stream = this.deps.streams.positionShard(shard);
      const entries = await this.deps.bus.claimIdle(stream, this.options.group, this.options.workerId, this.options.leaseMs * 2, this.options.batchSize);
      if (entries.length) await this.processBatch([{ stream, entries }]);
    }
  }

  private async processBatch(batches: { stream: string; entries: StreamEntry[] }[]): Promise<void> {
    const work: ShardWork[] = [];
    const fixes: { work: ShardWork; records: PositionRecord[] }[] = [];
    for (const { stream, entries } of batches) {
      const shard = this.shardOfStream.get(stream);
      if (shard === undefined || !this.states.has(shard)) continue; // lease lost meanwhile: the new owner replays them
      const w: ShardWork = { shard, stream, ids: entries.map((e) => e.id), touched: new Map() };
      work.push(w);
      fixes.push({ work: w, records: decodePositions(entries, warnMalformed(this.deps.log)) });
    }
    if (work.length === 0) return;
    const endTimer = this.metrics.batchSeconds.startTimer();
    const before = { fixes: this.stats.fixes, outOfOrder: this.stats.outOfOrder };
    try {
      await this.deps.fences.ensure(fixes.flatMap((f) => f.records.map((r) => r.tenant_id)));
      const transitions: Transition[] = [];
      for (const { work: w, records } of fixes) {
        const shardStates = this.states.get(w.shard)!;
        for (const fix of records) {
          const key = assetKey(fix.asset_id, fix.device_id);
          let state = shardStates.get(key);
          if (!state) shardStates.set(key, (state = newAssetState()));
          if (evaluateFix(this.deps.fences.get(fix.tenant_id), state, fix, transitions)) w.touched.set(key, state);
          else this.stats.outOfOrder++;
          this.stats.fixes++;
        }
      }
      const events: NewEvent[] = transitions.flatMap(transitionEvents);
      const inserted = events.length ? await insertEvents(this.deps.pool, events) : 0;
      this.stats.events += inserted;
      await this.options.afterEventsCommitted?.(inserted);
      this.throwIfKilled();
      const saved = await Promise.all(work.map((w) =>
        this.stateStore.save(w.shard, this.leases.leaseKey(w.shard), this.options.workerId, w.touched)));
      this.throwIfKilled();
      const acks: Promise<void>[] = [];
      work.forEach((w, i) => {
        if (saved[i]) acks.push(this.deps.bus.ack(w.stream, this.options.group, w.ids));
        else {
          this.deps.log.warn({ shard: w.shard }, 'shard lease lost during a batch; leaving its entries to the new owner');
          this.states.delete(w.shard);
        }
      });
      await Promise.all(acks);
      this.stats.batches++;
      this.metrics.fixes.inc(this.stats.fixes - before.fixes);
      this.metrics.outOfOrder.inc(this.stats.outOfOrder - before.outOfOrder);
      if (inserted) this.metrics.events.inc({ source: 'geofence' }, inserted);
      endTimer();
    } catch (err) {
      // The in-memory states ran ahead of what was saved: reload them and replay the pending entries.
      for (const w of work) {
        this.states.delete(w.shard);
        this.needsSync.add(w.shard);
      }
      throw err;
    }
  }

  private throwIfKilled(): void {
    if (this.killed) throw new Error('evaluator killed');
  }

  /** Graceful: finishes the batch in hand, acknowledges it, gives the leases back, then closes its connections. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      if (this.leaseTimer) clearInterval(this.leaseTimer);
      this.metrics.heldShards.delete(this.reportHeldShards);
      await this.loop?.catch(() => {});
      await this.leaseTick?.catch(() => {});
      if (!this.killed) await this.leases.releaseAll().catch(() => {});
      await this.deps.bus.close();
      await this.deps.coordination.close().catch(() => {});
    })();
    return this.closing;
  }

  /**
   * For failover tests: stops dead, as a crash would — nothing more is saved or acknowledged and
   * the leases are left to lapse — then lets go of its connections.
   */
  kill(): Promise<void> {
    this.killed = true;
    return this.close();
  }
}
