import type { FenceKind, PunchKind } from './domain.js';

/**
 * The events of the platform and the `data` each carries: one map, so that a producer cannot write, and a
 * consumer cannot expect, a type or a field the other does not know (docs/design.md, "Events").
 * Envelope: `{"id","event","tenant_id","occurred_at","data"}`, the same in the `events` table, on
 * `events:{tenant}`, on the live socket (with the stream id as `id`) and in webhooks.
 */

/** `asset.geofence_entered|exited`: a confirmed crossing of a fence (for every fence kind). */
export interface GeofenceEventData {
  /** Null for a device not linked to an asset. */
  asset_id: string | null;
  device_id: string;
  geofence_id: string;
  geofence_name: string;
  geofence_kind: FenceKind;
  lat: number;
  lon: number;
  /** The confirming fix's time, ISO 8601. */
  ts: string;
  accuracy_m: number | null;
  speed_mps: number | null;
}

/** `asset.geofence_breach`: a crossing of a `restricted` fence, either way, next to its entered/exited event. */
export interface GeofenceBreachData extends GeofenceEventData {
  direction: 'entered' | 'exited';
}

/** `employee.punched_in|out`: a punch after GPS verification against the tenant's `site` fences. */
export interface PunchEventData {
  /** Null when `employee_ref` matched no employee (by id or badge code); `unknown_employee` is then true. */
  employee_id: string | null;
  /** What the device sent as `employee_id`. */
  employee_ref: string;
  unknown_employee: boolean;
  device_id: string;
  kind: PunchKind;
  gps_verified: boolean;
  /** The site it was verified at, or else the nearest one. */
  site_id: string | null;
  /** Metres to that site (0 inside); null without a position or without sites. */
  distance_m: number | null;
  lat: number | null;
  lon: number | null;
  accuracy_m: number | null;
  ts: string;
  punch_id: string;
}

/** `webhook.disabled`: an endpoint failed for so long that the platform turned it off (its tenant is told). */
export interface WebhookDisabledData {
  webhook_id: string;
  url: string;
  failing_since: string;
  reason: string;
}

/** Business events carry the object as the API returns it. */
export type BusinessEventData = Record<string, unknown>;

export interface EventMap {
  'asset.geofence_entered': GeofenceEventData;
  'asset.geofence_exited': GeofenceEventData;
  'asset.geofence_breach': GeofenceBreachData;
  'employee.punched_in': PunchEventData;
  'employee.punched_out': PunchEventData;
  'work_order.created': BusinessEventData;
  'work_order.assigned': BusinessEventData;
  'work_order.started': BusinessEventData;
  'work_order.completed': BusinessEventData;
  'quote.created': BusinessEventData;
  'quote.sent': BusinessEventData;
  'quote.accepted': BusinessEventData;
  'inspection.submitted': BusinessEventData;
  'webhook.disabled': WebhookDisabledData;
}

export type EventType = keyof EventMap;

/** Every event type, e.g. to validate a webhook's `events` list. */
export const EVENT_TYPES = Object.keys({
  'asset.geofence_entered': true,
  'asset.geofence_exited': true,
  'asset.geofence_breach': true,
  'employee.punched_in': true,
  'employee.punched_out': true,
  'work_order.created': true,
  'work_order.assigned': true,
  'work_order.started': true,
  'work_order.completed': true,
  'quote.created': true,
  'quote.sent': true,
  'quote.accepted': true,
  'inspection.submitted': true,
  'webhook.disabled': true,
} satisfies Record<EventType, true>) as EventType[]; // the `satisfies` fails the build when a type is missing here

const EVENT_TYPE_SET: ReadonlySet<string> = new Set(EVENT_TYPES);
export const isEventType = (value: unknown): value is EventType => typeof value === 'string' && EVENT_TYPE_SET.has(value);

export const GEOFENCE_EVENT_TYPES = ['asset.geofence_entered', 'asset.geofence_exited', 'asset.geofence_breach'] as const satisfies readonly EventType[];
export const PUNCH_EVENT_TYPES = ['employee.punched_in', 'employee.punched_out'] as const satisfies readonly EventType[];

/** An event as published: `id` is the `events` row id on the stream and in webhooks, the stream id on the live socket. */
export interface EventEnvelope<T extends EventType = EventType> {
  id: string;
  event: T;
  tenant_id: string;
  occurred_at: string;
  data: EventMap[T];
}

/** A row for the events outbox (services/shared/outbox.ts); the relay publishes it after commit. */
export type NewEvent = { [T in EventType]: NewEventOf<T> }[EventType];

export interface NewEventOf<T extends EventType> {
  tenantId: string;
  type: T;
  occurredAt: string;
  data: EventMap[T];
  /** The same fact written twice (a replayed stream entry, a retried request) keeps the first row. */
  idempotencyKey: string;
  assetId?: string | null;
  deviceId?: string | null;
  employeeId?: string | null;
  geofenceId?: string | null;
}
