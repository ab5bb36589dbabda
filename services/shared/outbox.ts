import type { EventType, NewEventOf } from './contracts/events.js';
import type { Queryable } from './db.js';

/**
 * The events outbox (docs/design.md, "Events outbox"): a producer inserts its events in the same
 * transaction as the change they report; the outbox relay (services/jobs/outbox-relay.ts) publishes
 * them to `events:{tenant}` after commit. Inserts in order with one statement (arrays bound as nine
 * parameters, whatever the count); a repeated idempotency key is skipped. Returns how many rows were new.
 */
export async function insertEvents(db: Queryable, events: readonly NewEventOf<EventType>[]): Promise<number> {
  if (events.length === 0) return 0;
  const { rowCount } = await db.query(
    `insert into events (tenant_id, type, occurred_at, data, idempotency_key, asset_id, device_id, employee_id, geofence_id)
     select tenant_id, type, occurred_at, data, idempotency_key, asset_id, device_id, employee_id, geofence_id
       from unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::jsonb[], $5::text[], $6::uuid[], $7::uuid[], $8::uuid[], $9::uuid[])
            with ordinality as e (tenant_id, type, occurred_at, data, idempotency_key, asset_id, device_id, employee_id, geofence_id, n)
      order by n
     on conflict (tenant_id, idempotency_key) do nothing`,
    [
      events.map((e) => e.tenantId),
      events.map((e) => e.type),
      events.map((e) => e.occurredAt),
      events.map((e) => JSON.stringify(e.data)),
      events.map((e) => e.idempotencyKey),
      events.map((e) => e.assetId ?? null),
      events.map((e) => e.deviceId ?? null),
      events.map((e) => e.employeeId ?? null),
      events.map((e) => e.geofenceId ?? null),
    ],
  );
  return rowCount ?? 0;
}
