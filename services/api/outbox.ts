import type { EventMap, EventType, NewEventOf } from '../shared/contracts/events.js';
import type { Queryable } from '../shared/db.js';
import { insertEvents } from '../shared/outbox.js';

/**
 * Business events (docs/design.md, "Events outbox"), written by the API in the transaction of the change
 * they announce — so a rolled-back change sends nothing — through the one outbox insert
 * (services/shared/outbox.ts); the outbox relay publishes them after commit. Their `data` is the object
 * as the API answers it.
 *
 * The contract (services/shared/contracts/events.ts) names every event type; this map pins each business
 * type to the API object it carries. Each resource adds its own next to its type, by declaration merging
 * (`declare module '../outbox.js' { interface BusinessEventMap { 'work_order.created': WorkOrder } }`),
 * so that this module imports no resource; a key that is not a contract type cannot be written.
 */
export interface BusinessEventMap {}

export type BusinessEventType = keyof BusinessEventMap & EventType;

/** What every evented object has: its id, its version after the change, and the time of the change. */
export interface EventedObject {
  id: string;
  version: number;
  updated_at: Date | string;
}

/** The event log's filter columns (GET /v1/events?asset_id=…) the event is found by. */
export interface EventRefs {
  asset_id?: string | null;
  device_id?: string | null;
  employee_id?: string | null;
  geofence_id?: string | null;
}

/**
 * Writes one event for `object` at its version: `occurred_at` is the object's `updated_at` (the
 * transaction's time), and `(type, id, version)` its idempotency key, so one change is never evented twice.
 */
export async function recordEvent<K extends BusinessEventType>(
  db: Queryable,
  tenantId: string,
  type: K,
  object: BusinessEventMap[K] & EventedObject,
  refs: EventRefs = {},
): Promise<void> {
  const { id, version, updated_at: changedAt } = object as EventedObject;
  const event: NewEventOf<K> = {
    tenantId,
    type,
    occurredAt: new Date(changedAt).toISOString(),
    // The contract types business data loosely (any object); the map above is the precise type.
    data: object as unknown as EventMap[K],
    idempotencyKey: `${type}:${id}:${version}`,
    assetId: refs.asset_id ?? null,
    deviceId: refs.device_id ?? null,
    employeeId: refs.employee_id ?? null,
    geofenceId: refs.geofence_id ?? null,
  };
  await insertEvents(db, [event as NewEventOf<EventType>]);
}
