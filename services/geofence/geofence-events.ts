import type { GeofenceEventData, NewEvent } from '../shared/contracts/events.js';
import { shardKey } from '../shared/contracts/stream-codec.js';
import type { Transition } from './fence-evaluator.js';

/**
 * The events of one transition (docs/design.md, "Events"): entered or exited, plus a breach for a
 * `restricted` fence either way. The idempotency key names the fence, the asset (or device), the
 * confirming fix's time and the direction, so a re-evaluated stream entry writes nothing new.
 */
export function transitionEvents({ fence, entered, fix }: Transition): NewEvent[] {
  const direction = entered ? 'entered' : 'exited';
  const occurredAt = new Date(fix.ts_ms).toISOString();
  const data: GeofenceEventData = {
    asset_id: fix.asset_id,
    device_id: fix.device_id,
    geofence_id: fence.id,
    geofence_name: fence.name,
    geofence_kind: fence.kind,
    lat: fix.lat,
    lon: fix.lon,
    ts: occurredAt,
    accuracy_m: fix.accuracy_m,
    speed_mps: fix.speed_mps,
  };
  const key = `geofence:${fence.id}:${shardKey(fix.asset_id, fix.device_id)}:${fix.ts_ms}:${direction}`;
  const base = { tenantId: fix.tenant_id, occurredAt, assetId: fix.asset_id, deviceId: fix.device_id, geofenceId: fence.id };
  const events: NewEvent[] = [{ ...base, type: entered ? 'asset.geofence_entered' : 'asset.geofence_exited', data, idempotencyKey: key }];
  if (fence.kind === 'restricted') {
    events.push({ ...base, type: 'asset.geofence_breach', data: { ...data, direction }, idempotencyKey: `${key}:breach` });
  }
  return events;
}
