import type { Pool, PoolClient } from '../shared/db.js';
import { withTransaction } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, webhookSignature } from '../shared/contracts/webhooks.js';
import { sealedBox, type SealedBox } from '../shared/sealed-box.js';
import { checkTarget, parseAllowList, systemResolver, type AllowList, type Resolver } from '../shared/webhook-targets.js';
import { createDeliveryStore, type AttemptRecord, type ClaimedDelivery } from './delivery-store.js';
import { createHttpSender, type HttpSender, type SendResult } from './http-sender.js';
import { webhookMetrics, type WebhookMetrics } from './metrics.js';
import { outcomeOf } from './retry-policy.js';
import { Wakeup } from '../shared/wakeup.js';

/** Sent on commit by a statement-level trigger on `webhook_deliveries` (migration 009). */
const WAKE_CHANNEL = 'webhook_deliveries_inserted';
/** How often queued deliveries stranded by a race are looked for, and how old they must be. */
const STRANDED_SWEEP_MS = 5000;
const STRANDED_AGE_MS = 2000;
/**
 * How far back a sweep looks past the previous successful one: a stranded delivery is created at the
 * race, so this covers any transaction that lasted up to a minute. The first sweep looks at every row.
 */
const STRANDED_OVERLAP_MS = 60_000;
/**
 * Deliveries are claimed ahead of free slots, up to this many times the slots, so that claims stay large
 * (the database work is per statement, not per delivery) and a freed slot is refilled at once.
 */
const HOLD_FACTOR = 4;
/** An endpoint answering slower than this on average gets nothing held ahead: only its slots are claimed. */
const SLOW_ENDPOINT_MS = 1000;

export interface DeliveryWorkerOptions {
  secretKey: string;
  allowHosts: string;
  timeoutMs: number;
  retryDelaysMs: readonly number[];
  endpointConcurrency: number;
  maxInFlight: number;
  disableAfterMs: number;
  pollMs: number;
  /** The DNS seam; default: the system resolver. */
  resolver?: Resolver;
  /** Deliveries claimed per statement at most. */
  claimBatch?: number;
}

/** A delivery claimed and waiting for a slot of its endpoint. */
interface Held {
  delivery: ClaimedDelivery;
  claimedAt: number;
}

interface Signer {
  version: number;
  current: string;
  previous: string | null;
  previousUntilMs: number;
}

/**
 * The webhooks role's engine (docs/design.md, "Webhooks"). One loop claims due deliveries in batches
 * (woken by the insert notice, by a freed slot or a retry coming due, else polling), each attempt runs
 * on its own (signed afresh, sent to the address its target check accepted), and finished attempts are
 * recorded together, a batch per statement. Per endpoint at most `endpointConcurrency` attempts are in
 * flight; up to `HOLD_FACTOR` times that are claimed ahead and held, started as its slots free up (a slow
 * endpoint gets its slots' worth only), so a slow endpoint holds its own share only; per key, the
 * database hands out a delivery only after the one before it is finished.
 */
export class DeliveryWorker {
  private closed = false;
  private loop: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  /** The claim loop's pause, cut short by a notice, a freed slot, a retry coming due or close. */
  private readonly wakeup = new Wakeup();
  private inFlight = 0;
  /** Attempts in flight per endpoint. */
  private readonly perEndpoint = new Map<string, number>();
  /** Claimed deliveries waiting for a slot, per endpoint, oldest first. */
  private readonly ready = new Map<string, Held[]>();
  private readyCount = 0;
  /** Each endpoint's recent answer time (a moving average, ms): a slow one gets nothing held ahead. */
  private readonly answerMs = new Map<string, number>();
  private readonly holdCap: number;
  /** A held delivery not started within this is handed back: its attempt would outlast its lease. */
  private readonly holdMs: number;
  /** The deliveries' statements on the pool (a transaction's own store is made where one is needed). */
  private readonly store: ReturnType<typeof createDeliveryStore>;
  private pendingRecords: AttemptRecord[] = [];
  /** Outcomes not yet written (waiting or being written): claiming pauses while the writes lag this far. */
  private unrecorded = 0;
  private flushing: Promise<void> | null = null;
  private listener: PoolClient | null = null;
  private readonly sender: HttpSender;
  private readonly box: SealedBox;
  private readonly allow: AllowList;
  private readonly resolver: Resolver;
  private readonly signers = new Map<string, Signer>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly leaseMs: number;
  private readonly metrics: WebhookMetrics = webhookMetrics();

  constructor(private readonly pool: Pool, private readonly log: Logger, private readonly options: DeliveryWorkerOptions) {
    this.sender = createHttpSender();
    this.store = createDeliveryStore(pool);
    this.box = sealedBox(options.secretKey, 'webhook-secrets');
    this.allow = parseAllowList(options.allowHosts);
    this.resolver = options.resolver ?? systemResolver;
    // The lease outlasts the attempt's deadline and the recording of its outcome.
    this.leaseMs = 2 * options.timeoutMs + 2000;
    // Started within half a deadline, an attempt still ends (and is recorded) well inside its lease.
    this.holdMs = options.timeoutMs / 2;
    this.holdCap = options.maxInFlight * HOLD_FACTOR;
  }

  async start(): Promise<void> {
    await this.listen();
    this.loop ??= this.run();
  }

  private async listen(): Promise<void> {
    let client: PoolClient | null = null;
    try {
      client = await this.pool.connect();
      const mine = client;
      this.listener = mine;
      mine.on('notification', () => this.wakeup.signal());
      mine.on('error', (err) => {
        if (this.listener !== mine) return; // already handed back (closed, or replaced)
        this.log.warn({ err }, 'webhooks: the notice connection dropped; polling until it is back');
        this.listener = null;
        mine.release(err);
        if (!this.closed) setTimeout(() => void this.listen(), this.options.pollMs).unref();
      });
      await mine.query(`listen ${WAKE_CHANNEL}`);
    } catch (err) {
      if (client && this.listener !== client) return; // its error handler released it and listens again
      this.log.warn({ err }, 'webhooks: cannot listen for deliveries; polling');
      if (client) {
        this.listener = null;
        client.release(err as Error);
      }
      if (!this.closed) setTimeout(() => void this.listen(), this.options.pollMs).unref();
    }
  }

  private async run(): Promise<void> {
    let sweptAt = 0;
    let lastSweepOkAt: number | null = null;
    while (!this.closed) {
      if (Date.now() - sweptAt >= STRANDED_SWEEP_MS) {
        sweptAt = Date.now();
        const within = lastSweepOkAt === null ? null : sweptAt - lastSweepOkAt + STRANDED_OVERLAP_MS;
        await this.store.promoteStranded(STRANDED_AGE_MS, within).then(
          () => { lastSweepOkAt = sweptAt; },
          (err: unknown) => this.log.warn({ err }, 'webhooks: cannot promote stranded deliveries'),
        );
      }
      // Claim while less than one wave of attempts is held ready, up to the hold cap.
      const room = this.unrecorded > 2 * this.holdCap ? 0 : this.holdCap - this.inFlight - this.readyCount;
      const batch = Math.min(room, this.options.claimBatch ?? 500);
      let claimed: ClaimedDelivery[] = [];
      if (batch > 0 && this.readyCount < this.options.maxInFlight) {
        try {
          claimed = await this.store.claim({
            batch,
            ...this.slots(),
            perEndpoint: this.options.endpointConcurrency * HOLD_FACTOR,
            leaseMs: this.leaseMs,
          });
        } catch (err) {
          if (this.closed) break;
          this.log.warn({ err }, 'webhooks: cannot claim deliveries; retrying');
        }
      }
      this.hold(claimed);
      // A full batch may have left more due: claim again at once (while little is held ready).
      if (claimed.length === 0 || claimed.length < batch || this.readyCount >= this.options.maxInFlight) await this.wakeup.pause(this.options.pollMs);
    }
  }

  /** What each endpoint may still be given: its hold limit less what it holds (in flight and ready). */
  private slots(): { saturated: string[]; partial: { webhookId: string; free: number }[] } {
    const saturated: string[] = [];
    const partial: { webhookId: string; free: number }[] = [];
    const endpoints = new Set([...this.perEndpoint.keys(), ...this.ready.keys()]);
    for (const webhookId of this.answerMs.keys()) if (this.isSlow(webhookId)) endpoints.add(webhookId);
    for (const webhookId of endpoints) {
      const slow = this.isSlow(webhookId);
      const limit = this.options.endpointConcurrency * (slow ? 1 : HOLD_FACTOR);
      const free = limit - (this.perEndpoint.get(webhookId) ?? 0) - (this.ready.get(webhookId)?.length ?? 0);
      if (free <= 0) saturated.push(webhookId);
      else partial.push({ webhookId, free });
    }
    return { saturated, partial };
  }

  private isSlow(webhookId: string): boolean {
    return (this.answerMs.get(webhookId) ?? 0) > SLOW_ENDPOINT_MS;
  }

  private hold(claimed: readonly ClaimedDelivery[]): void {
    const claimedAt = Date.now();
    const endpoints = new Set<string>();
    for (const delivery of claimed) {
      let queue = this.ready.get(delivery.webhook_id);
      if (!queue) this.ready.set(delivery.webhook_id, (queue = []));
      queue.push({ delivery, claimedAt });
      this.readyCount++;
      endpoints.add(delivery.webhook_id);
    }
    for (const webhookId of endpoints) this.startReady(webhookId);
  }

  /**
   * Starts an endpoint's held deliveries while it has free slots (and the process has room). One held
   * too long behind a slow endpoint is handed back instead: its lease would run out mid-attempt.
   */
  private startReady(webhookId: string): void {
    const queue = this.ready.get(webhookId);
    if (!queue) return;
    const stale: ClaimedDelivery[] = [];
    const staleBefore = Date.now() - this.holdMs;
    while (queue.length > 0 && !this.closed && this.inFlight < this.options.maxInFlight
      && (this.perEndpoint.get(webhookId) ?? 0) < this.options.endpointConcurrency) {
      const { delivery, claimedAt } = queue.shift()!;
      this.readyCount--;
      if (claimedAt < staleBefore) stale.push(delivery);
      else this.dispatch(delivery);
    }
    if (queue.length === 0) this.ready.delete(webhookId);
    void this.release(stale);
  }

  /** Hands back held deliveries never started (see the store's `release`); missed, their leases run out. */
  private release(deliveries: readonly ClaimedDelivery[]): Promise<void> {
    if (deliveries.length === 0) return Promise.resolve();
    this.wakeup.signal();
    return this.store.release(deliveries.map((d) => ({ seq: d.seq, attempts: d.attempts })))
      .catch((err: unknown) => this.log.warn({ err, deliveries: deliveries.length }, 'webhooks: cannot hand back held deliveries; their leases will run out'));
  }

  private dispatch(delivery: ClaimedDelivery): void {
    this.inFlight++;
    this.metrics.inFlight.inc();
    this.perEndpoint.set(delivery.webhook_id, (this.perEndpoint.get(delivery.webhook_id) ?? 0) + 1);
    void this.attempt(delivery).then((record) => {
      // The endpoint's slot is free once it has answered; the outcome is written with the next batch.
      this.inFlight--;
      this.metrics.inFlight.dec();
      const left = (this.perEndpoint.get(delivery.webhook_id) ?? 1) - 1;
      if (left > 0) this.perEndpoint.set(delivery.webhook_id, left);
      else this.perEndpoint.delete(delivery.webhook_id);
      const before = this.answerMs.get(delivery.webhook_id);
      const average = before === undefined ? record.durationMs : 0.8 * before + 0.2 * record.durationMs;
      // Only a slow endpoint's is kept once it is idle (it limits what is claimed for it): the map stays small.
      if (left > 0 || this.ready.has(delivery.webhook_id) || average > SLOW_ENDPOINT_MS) this.answerMs.set(delivery.webhook_id, average);
      else this.answerMs.delete(delivery.webhook_id);
      this.recordLater(record);
      this.startReady(delivery.webhook_id);
      // The process's cap may have held back other endpoints' deliveries.
      if (this.readyCount > 0 && this.inFlight < this.options.maxInFlight) for (const webhookId of [...this.ready.keys()]) this.startReady(webhookId);
      this.wakeup.signal();
    });
  }

  private async attempt(delivery: ClaimedDelivery): Promise<AttemptRecord> {
    const startedAt = new Date();
    let result: SendResult & { refused?: boolean };
    try {
      result = await this.send(delivery);
    } catch (err) {
      this.log.error({ err, delivery: delivery.id }, 'webhooks: attempt failed unexpectedly');
      result = { statusCode: null, excerpt: null, retryAfterS: null, error: 'internal error', durationMs: Date.now() - startedAt.getTime() };
    }
    const outcome = outcomeOf(result, delivery.round_attempts, this.options.retryDelaysMs);
    this.metrics.attempts.inc({ outcome: outcome.status === 'pending' ? 'retry' : outcome.status });
    this.metrics.attemptSeconds.observe(result.durationMs / 1000);
    if (outcome.status === 'pending') this.wakeAt(outcome.nextAttemptAt.getTime());
    return {
      seq: delivery.seq,
      attempt: delivery.attempts,
      status: outcome.status,
      nextAttemptAt: outcome.status === 'pending' ? outcome.nextAttemptAt : null,
      statusCode: result.statusCode,
      error: result.error,
      startedAt,
      durationMs: result.durationMs,
      excerpt: result.excerpt,
    };
  }

  private async send(delivery: ClaimedDelivery): Promise<SendResult & { refused?: boolean }> {
    const url = new URL(delivery.url);
    const target = await checkTarget(url, this.allow, this.resolver);
    if (!target.ok) {
      return { statusCode: null, excerpt: null, retryAfterS: null, error: `address refused: ${target.reason}`, durationMs: 0, refused: !target.unresolved };
    }
    // The envelope of docs/design.md, "Events": the same fields, in the same order, as on the stream.
    const body = JSON.stringify({
      id: delivery.event_id ?? delivery.id,
      event: delivery.event_type,
      tenant_id: delivery.tenant_id,
      occurred_at: delivery.occurred_at.toISOString(),
      data: delivery.data,
    });
    const timestampS = Math.floor(Date.now() / 1000);
    return this.sender.send({
      url,
      address: target.address,
      body,
      timeoutMs: this.options.timeoutMs,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'fieldops-webhooks/1',
        [SIGNATURE_HEADER]: webhookSignature(this.secretsOf(delivery, timestampS * 1000), timestampS, body),
        [EVENT_HEADER]: delivery.event_type,
        [DELIVERY_HEADER]: delivery.id,
      },
    });
  }

  /** The secrets that sign now: the current one, and the previous one during a rotation's overlap. */
  private secretsOf(delivery: ClaimedDelivery, nowMs: number): string[] {
    let signer = this.signers.get(delivery.webhook_id);
    if (!signer || signer.version !== delivery.webhook_version) {
      signer = {
        version: delivery.webhook_version,
        current: this.box.open(delivery.secret_sealed),
        previous: delivery.previous_secret_sealed ? this.box.open(delivery.previous_secret_sealed) : null,
        previousUntilMs: delivery.previous_secret_expires_at?.getTime() ?? 0,
      };
      this.signers.set(delivery.webhook_id, signer);
    }
    return signer.previous && nowMs < signer.previousUntilMs ? [signer.current, signer.previous] : [signer.current];
  }

  /**
   * Outcomes are written a batch per statement. The next delivery of a key is promoted by that write, so
   * order holds although the endpoint's slot was freed before it.
   */
  private recordLater(record: AttemptRecord): void {
    this.pendingRecords.push(record);
    this.unrecorded++;
    this.flushing ??= this.flush();
  }

  private async flush(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pendingRecords.length > 0) {
      const batch = this.pendingRecords;
      this.pendingRecords = [];
      await this.writeRecords(batch);
      this.unrecorded -= batch.length;
      this.wakeup.signal();
    }
    this.flushing = null;
  }

  /**
   * Retries until written or closed: a record lost here would leave the delivery to its lease (tried
   * again later) — at least once, never lost. A retry of a statement that did commit changes nothing
   * (only deliveries still pending at that attempt are updated).
   */
  private async writeRecords(records: AttemptRecord[]): Promise<void> {
    let gaveUp: string[] = [];
    for (let attempt = 0; ; attempt++) {
      try {
        // One statement outside a transaction: two round trips fewer per batch on the hot path.
        gaveUp = await this.store.complete(records);
        break;
      } catch (err) {
        if (this.closed && attempt >= 2) {
          this.log.error({ err, records: records.length }, 'webhooks: outcomes not recorded at shutdown; their leases will run out and they are attempted again');
          return;
        }
        this.log.warn({ err }, 'webhooks: cannot record attempts; retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** attempt)));
      }
    }
    if (gaveUp.length === 0) return;
    // Rare, and two statements (the endpoints, their tenants' events): a transaction of their own. Missed
    // (the database away, a crash), it happens at the endpoint's next delivery that fails for good.
    try {
      const disabled = await withTransaction(this.pool, (db) => createDeliveryStore(db).disableLongFailing(gaveUp, this.options.disableAfterMs));
      if (disabled) this.log.warn({ endpoints: disabled }, 'webhooks: endpoints failing for too long were disabled');
    } catch (err) {
      this.log.warn({ err }, 'webhooks: cannot disable long-failing endpoints now');
    }
  }

  private wakeAt(atMs: number): void {
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      this.wakeup.signal();
    }, Math.max(0, atMs - Date.now()) + 5);
    timer.unref();
    this.retryTimers.add(timer);
  }

  /** Stops claiming, lets the attempts in flight finish (each within its timeout), records them, then closes. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.wakeup.signal();
      await this.loop?.catch(() => {});
      // Held deliveries not started go back at once, for another process to take.
      const held = [...this.ready.values()].flat().map((h) => h.delivery);
      this.ready.clear();
      this.readyCount = 0;
      await this.release(held);
      while (this.inFlight > 0 || this.unrecorded > 0) {
        await (this.flushing ?? new Promise((resolve) => setTimeout(resolve, 10)));
      }
      for (const timer of this.retryTimers) clearTimeout(timer);
      const listener = this.listener;
      this.listener = null;
      if (listener) {
        await listener.query(`unlisten ${WAKE_CHANNEL}`).catch(() => {});
        listener.removeAllListeners('notification');
        listener.release();
      }
      this.sender.close();
    })();
    return this.closing;
  }
}
