import type { StreamBus } from '../shared/bus.js';
import type { Pool, PoolClient } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import type { EventEnvelope, EventType } from '../shared/contracts/events.js';
import { eventEntry, type StreamNames } from '../shared/contracts/stream-codec.js';
import { Wakeup } from '../shared/wakeup.js';

/** Sent on commit by a statement-level trigger on `events` (migration 004). */
const WAKE_CHANNEL = 'events_inserted';
/** One relay per database at a time: the holder of this session-level advisory lock. */
const RELAY_LOCK_SQL = "select pg_try_advisory_lock(hashtext('fieldops.outbox-relay')) as locked";

export interface OutboxRelayOptions {
  streams: StreamNames;
  /** Approximate length kept in each `events:{tenant}` stream. */
  maxLen: number;
  batchSize?: number;
  /** Polling fallback when no notice arrives (a notice lost with a dropped connection). */
  pollMs?: number;
  /** How often a standby relay tries to take over. */
  standbyRetryMs?: number;
  /**
   * How long an XADD is remembered by its once-key: a relay that crashed between XADD and marking
   * the row is replaced, and the replacement's retry reuses the first stream id within this window.
   */
  onceTtlS?: number;
}

interface EventRow {
  id: string;
  tenant_id: string;
  type: EventType;
  occurred_at: Date;
  data: Record<string, unknown>;
}

/**
 * The outbox relay (docs/design.md, "Events outbox"): moves `events` rows not yet published to `events:{tenant}`
 * in id order, then records each row's stream id. Exactly one relay is active per database — the
 * session holding an advisory lock; the others stand by and take over when that session ends. It is
 * woken by NOTIFY on insert and polls as a fallback. XADD goes through `appendOnce` keyed by the
 * event id, so a crash between XADD and the UPDATE cannot publish an event twice.
 * `pool` must be a role that reads and updates every tenant's events: `fieldops_worker`
 * (`runtime.pool('worker')`), also when the API role runs a relay.
 */
export class OutboxRelay {
  private closed = false;
  /** Notices wake the relay's pause; one that came while it was busy makes the next pause return at once. */
  private readonly wakeup = new Wakeup();
  private loop: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private activeNow = false;
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly standbyRetryMs: number;
  private readonly onceTtlS: number;
  readonly stats = { published: 0 };

  constructor(private readonly pool: Pool, private readonly bus: StreamBus, private readonly log: Logger, private readonly options: OutboxRelayOptions) {
    this.batchSize = options.batchSize ?? 500;
    this.pollMs = options.pollMs ?? 1000;
    this.standbyRetryMs = options.standbyRetryMs ?? 1000;
    this.onceTtlS = options.onceTtlS ?? 6 * 3600;
  }

  /** Whether this relay holds the lock and is publishing. */
  get active(): boolean {
    return this.activeNow;
  }

  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      const client = await this.pool.connect().catch((err: unknown) => {
        this.log.warn({ err }, 'outbox relay cannot reach the database; retrying');
        return null;
      });
      if (!client) {
        await this.wakeup.pause(this.standbyRetryMs);
        continue;
      }
      let locked = false;
      try {
        locked = (await client.query<{ locked: boolean }>(RELAY_LOCK_SQL)).rows[0]?.locked === true;
      } catch (err) {
        client.release(err as Error);
        await this.wakeup.pause(this.standbyRetryMs);
        continue;
      }
      if (!locked) {
        client.release();
        await this.wakeup.pause(this.standbyRetryMs);
        continue;
      }
      await this.publishWhileHoldingLock(client);
    }
  }

  private async publishWhileHoldingLock(client: PoolClient): Promise<void> {
    let lost: Error | undefined;
    const onError = (err: Error) => {
      lost = err;
      this.wakeup.signal();
    };
    client.on('error', onError);
    client.on('notification', () => this.wakeup.signal());
    this.activeNow = true;
    this.log.info('outbox relay active');
    try {
      await client.query(`listen ${WAKE_CHANNEL}`);
      while (!this.closed && !lost) {
        let published = 0;
        try {
          published = await this.publishBatch(client);
        } catch (err) {
          if (lost || this.closed) break;
          this.log.warn({ err }, 'outbox relay could not publish; retrying');
          await this.wakeup.pause(this.standbyRetryMs);
          continue;
        }
        if (published < this.batchSize) await this.wakeup.pause(this.pollMs);
      }
    } catch (err) {
      lost ??= err as Error;
    } finally {
      this.activeNow = false;
      client.removeAllListeners('notification');
      if (lost) {
        if (!this.closed) this.log.warn({ err: lost }, 'outbox relay lost its session; standing by');
        client.release(lost); // destroys it; onError stays attached to absorb its last errors
      } else {
        // Ending the session would drop the lock too; unlocking keeps the pooled connection reusable.
        await client.query(`unlisten ${WAKE_CHANNEL}; select pg_advisory_unlock_all()`).catch(() => {});
        client.off('error', onError);
        client.release();
      }
    }
  }

  /** Publishes the oldest unpublished rows; returns how many. */
  private async publishBatch(db: PoolClient): Promise<number> {
    const { rows } = await db.query<EventRow>(
      `select id, tenant_id, type, occurred_at, data from events where published_at is null order by id limit $1`,
      [this.batchSize],
    );
    if (rows.length === 0) return 0;
    const streamIds = await this.bus.appendOnce(
      rows.map((row) => {
        const envelope = {
          id: row.id,
          event: row.type,
          tenant_id: row.tenant_id,
          occurred_at: row.occurred_at.toISOString(),
          data: row.data,
        } as EventEnvelope;
        return { ...eventEntry(this.options.streams, envelope), onceKey: `event:${row.id}` };
      }),
      this.options.maxLen,
      this.onceTtlS,
    );
    await db.query(
      `update events e set stream_id = u.stream_id, published_at = now()
         from unnest($1::bigint[], $2::text[]) as u (id, stream_id) where e.id = u.id`,
      [rows.map((r) => r.id), streamIds],
    );
    this.stats.published += rows.length;
    return rows.length;
  }

  /** Stops publishing after the batch in hand and gives the lock back, so a standby takes over at once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.wakeup.signal();
      await this.loop?.catch(() => {});
    })();
    return this.closing;
  }
}
