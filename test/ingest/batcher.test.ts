import { describe, expect, it } from 'vitest';
import { Batcher, type BatchStore, type CommittedBatch } from '../../ingest/batcher.js';
import type { Fix } from '../../ingest/decode.js';
import type { DeviceRef, PositionColumns } from '../../ingest/rows.js';
import { createLogger } from '../../services/shared/log.js';

/**
 * The batcher on its own, with a store in memory behind its BatchStore seam: the commit order, a bad row's
 * isolation, retries and giving up at close are checked here without a database (the ingest end-to-end
 * tests cover the same paths through PostgreSQL).
 */

const device: DeviceRef = { id: 'd0000000-0000-4000-8000-000000000001', tenantId: 't0000000-0000-4000-8000-000000000001', assetId: null, siteId: null };
/** A latitude the fake store refuses as the database refuses a value out of range (a data error, class 22). */
const POISON_LAT = 66.6;

const fix = (tsMs: number, lat = 10): Fix => ({
  tsMs, lat, lon: 20, speedMps: null, headingDeg: null, accuracyM: null, altitudeM: null, batteryPct: null, seq: null,
});

const dataError = () => Object.assign(new Error('value out of range'), { code: '22003' });
const connectionError = () => Object.assign(new Error('connection terminated'), { code: 'ECONNRESET' });

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Positions get ids in insertion order; `beforeInsert` may hold or fail an attempt. */
class MemoryStore implements BatchStore {
  readonly stored = new Map<string, string>();
  attempts = 0;
  private nextId = 1;

  constructor(private readonly beforeInsert: (rows: PositionColumns, attempt: number) => Promise<void> | void = () => {}) {}

  async insertPositions(rows: PositionColumns): Promise<(string | null)[]> {
    await this.beforeInsert(rows, ++this.attempts);
    return this.keep(rows);
  }

  /** What the database does with the rows: refuse a poisoned batch whole, store each (device, ts) once. */
  keep(rows: PositionColumns): (string | null)[] {
    if (rows.lat.includes(POISON_LAT)) throw dataError();
    return rows.tsMs.map((ts, i) => {
      const key = `${rows.deviceId[i]}|${ts}`;
      if (this.stored.has(key)) return null; // a duplicate: stored once, no new id
      const id = String(this.nextId++);
      this.stored.set(key, id);
      return id;
    });
  }

  async insertPunches(): Promise<(string | null)[]> {
    return [];
  }

  async existingPositionIds(deviceIds: string[], tsMs: number[]): Promise<(string | null)[]> {
    return deviceIds.map((d, i) => this.stored.get(`${d}|${tsMs[i]}`) ?? null);
  }

  async existingPunchIds(): Promise<(string | null)[]> {
    return [];
  }
}

function batcherOn(store: BatchStore, options: { maxRows?: number; maxInFlight?: number; maxPendingRows?: number } = {}) {
  const committed: CommittedBatch[] = [];
  const settled: { tag: number; failedRows: number }[] = [];
  const pressure: boolean[] = [];
  let retries = 0;
  const sut = new Batcher({
    maxRows: options.maxRows ?? 1000,
    maxMs: 1,
    maxInFlight: options.maxInFlight ?? 2,
    maxPendingRows: options.maxPendingRows ?? 100_000,
    store,
    onCommitted: (batch) => committed.push(batch),
    onPressure: (on) => pressure.push(on),
    log: createLogger('silent'),
    metrics: { observeCommit: () => {}, commitRetry: () => retries++ },
  });
  const settle = (_ctx: null, tag: number, failedRows: number) => settled.push({ tag, failedRows });
  const add = (tag: number, fixes: Fix[]) => sut.addFixes(device, fixes, settle, null, tag);
  return { sut, add, committed, settled, pressure, retries: () => retries };
}

describe('batcher', () => {
  it('settles messages in the order they came although a later batch commits first', async () => {
    const firstHeld = deferred();
    const store = new MemoryStore((_rows, attempt) => (attempt === 1 ? firstHeld.promise : undefined));
    const { sut, add, committed, settled } = batcherOn(store, { maxRows: 2, maxInFlight: 2 });

    add(1, [fix(1), fix(2)]); // cut at 2 rows: batch A, held in the store
    add(2, [fix(3), fix(4)]); // batch B, committed at once
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(store.attempts).toBe(2);
    expect(settled).toEqual([]); // B is committed but must wait for A

    firstHeld.resolve();
    await sut.flush();
    expect(settled.map((s) => s.tag)).toEqual([1, 2]);
    expect(committed.map((b) => b.positions.tsMs)).toEqual([[1, 2], [3, 4]]);
  });

  it('refuses only the message holding a bad row; the rest of its batch is stored', async () => {
    const store = new MemoryStore();
    const { sut, add, committed, settled } = batcherOn(store);

    add(1, [fix(1)]);
    add(2, [fix(2, POISON_LAT), fix(3)]);
    add(3, [fix(4)]);
    await sut.flush();

    expect(settled).toEqual([{ tag: 1, failedRows: 0 }, { tag: 2, failedRows: 2 }, { tag: 3, failedRows: 0 }]);
    expect([...store.stored.keys()].map((k) => Number(k.split('|')[1]))).toEqual([1, 4]);
    expect(committed).toHaveLength(1);
    expect(committed[0]!.positionIds).toEqual([store.stored.get(`${device.id}|1`), null, null, store.stored.get(`${device.id}|4`)]);
  });

  it('retries a commit the database did not take, and passes on the ids of rows its lost attempt stored', async () => {
    const store: MemoryStore = new MemoryStore((rows, attempt) => {
      if (attempt === 1) {
        store.keep(rows); // the first attempt commits, but its answer is lost with the connection
        throw connectionError();
      }
      if (attempt === 2) throw connectionError();
    });
    const { sut, add, committed, settled, retries } = batcherOn(store);

    add(1, [fix(1), fix(2)]);
    await sut.flush();

    expect(retries()).toBe(2);
    expect(settled).toEqual([{ tag: 1, failedRows: 0 }]);
    expect(store.stored.size).toBe(2); // stored once
    // The retry saw conflicts; the batch still carries each row's id, so the stream misses none.
    expect(committed[0]!.positionIds).toEqual([store.stored.get(`${device.id}|1`), store.stored.get(`${device.id}|2`)]);
  });

  it('gives up at close when the database does not come back: nothing is acknowledged, retrying stops', async () => {
    const store = new MemoryStore(() => {
      throw connectionError();
    });
    const { sut, add, committed, settled } = batcherOn(store);

    add(1, [fix(1)]);
    expect(await sut.close(100)).toBe(false);
    const attemptsAtClose = store.attempts;
    await new Promise((resolve) => setTimeout(resolve, 1000)); // longer than the backoff at this point
    expect(store.attempts - attemptsAtClose).toBeLessThanOrEqual(1); // the attempt after the pause, then no more
    expect(settled).toEqual([]);
    expect(committed).toEqual([]);
  });

  it('turns pressure on past the bound of held rows and off again below half of it', async () => {
    const held = deferred();
    const store = new MemoryStore(() => held.promise);
    const { sut, add, pressure } = batcherOn(store, { maxPendingRows: 3 });

    add(1, [fix(1), fix(2)]);
    expect(pressure).toEqual([]);
    add(2, [fix(3), fix(4)]);
    expect(pressure).toEqual([true]);
    expect(sut.underPressure).toBe(true);

    held.resolve();
    await sut.flush();
    expect(pressure).toEqual([true, false]);
    expect(sut.heldRows).toBe(0);
  });
});
