import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventEntry } from '../../services/shared/contracts/stream-codec.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { asTenant, createOrg, type TestOrg } from '../support/factories.js';
import { GeofenceHarness } from './harness.js';
import { waitFor } from '../support/wait.js';

let db: TestDatabase;
let h: GeofenceHarness;
let org: TestOrg;
let counter = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  h = new GeofenceHarness(db);
  org = await createOrg(db.owner);
});

afterAll(async () => {
  await h?.close();
  await db?.drop();
});

/** Business events as the API writes them into the outbox: rows in the events table, nothing else. */
async function writeEvents(count: number, tenantId = org.id): Promise<string[]> {
  return asTenant(db.owner, tenantId, async (c) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const n = ++counter;
      const { rows } = await c.query<{ id: string }>(
        `insert into events (tenant_id, type, occurred_at, data, idempotency_key) values ($1, 'work_order.created', now(), $2, $3) returning id`,
        [tenantId, JSON.stringify({ id: `wo-${n}`, title: `Job ${n}` }), `test:${n}`],
      );
      ids.push(rows[0]!.id);
    }
    return ids;
  });
}

async function relayLockHolder(): Promise<number | null> {
  const { rows } = await db.owner.query<{ pid: number }>(
    `select pid from pg_locks where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())`,
  );
  return rows[0]?.pid ?? null;
}

const activeRelays = (relays: { active: boolean }[]) => relays.filter((r) => r.active).length;

describe('outbox relay', () => {
  it('publishes rows on the insert notice (no polling), in id order, and records their stream ids', async () => {
    const relay = h.startRelay({ pollMs: 600_000 });
    await waitFor(() => relay.active);
    const ids = await writeEvents(5);
    await h.published(org.id);
    const streamed = await h.streamedEvents(org.id);
    expect(streamed.map((e) => e.id)).toEqual(ids);
    expect(streamed[0]).toMatchObject({ event: 'work_order.created', tenant_id: org.id, data: { title: expect.any(String) } });
    const rows = await h.events(org.id);
    expect(rows.map((r) => r.stream_id)).toEqual(streamed.map((e) => e.streamId));
    await relay.close();
  });

  it('a relay that crashed between XADD and marking the row does not publish it twice', async () => {
    const [id] = await writeEvents(1);
    // The crashed relay's XADD: done through appendOnce with the event's once-key, row left unmarked.
    const [firstStreamId] = await h.bus.appendOnce(
      [{
        ...eventEntry(h.streams, { id: id!, event: 'work_order.created', tenant_id: org.id, occurred_at: new Date().toISOString(), data: {} }),
        onceKey: `event:${id}`,
      }],
      10_000, 3600,
    );
    const relay = h.startRelay();
    await h.published(org.id);
    const [row] = await h.events(org.id, 'id = $1', [id]);
    expect(row!.stream_id).toBe(firstStreamId);
    expect((await h.streamedEvents(org.id)).filter((e) => e.id === id)).toHaveLength(1);
    await relay.close();
  });

  it('one relay is active at a time; a standby takes over when it closes or its session dies', async () => {
    const relays = [h.startRelay(), h.startRelay(), h.startRelay()];
    await waitFor(() => activeRelays(relays) === 1);
    const first = relays.find((r) => r.active)!;
    const before = await writeEvents(3);
    await h.published(org.id);
    expect(activeRelays(relays)).toBe(1);

    await first.close();
    await waitFor(() => activeRelays(relays) === 1);
    expect(relays.find((r) => r.active)).not.toBe(first);
    const during = await writeEvents(3);
    await h.published(org.id);

    // The database ends the active relay's session (a crash, a network cut): its lock goes with it,
    // and a relay on another session takes over.
    const holder = await relayLockHolder();
    expect(holder).not.toBeNull();
    await db.owner.query('select pg_terminate_backend($1)', [holder]);
    await waitFor(async () => activeRelays(relays) === 1 && ![null, holder].includes(await relayLockHolder()));
    const after = await writeEvents(3);
    await h.published(org.id);

    const streamed = (await h.streamedEvents(org.id)).map((e) => e.id);
    for (const id of [...before, ...during, ...after]) expect(streamed.filter((s) => s === id)).toHaveLength(1);
    await Promise.all(relays.map((r) => r.close()));
  });
});
