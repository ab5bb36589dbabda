import type { DeviceKind } from '../services/shared/contracts/domain.js';
import type { DeviceRef } from './rows.js';

/** A device as the transports know it once its token is checked. */
export interface DeviceRecord extends DeviceRef {
  readonly kind: DeviceKind;
  readonly tokenHash: string;
}

/** A live connection of a device (MQTT client or WebSocket), cut off when the device is disabled or its token rotated. */
export interface DeviceSession {
  device: DeviceRecord;
  disconnect(reason: 'device_disabled' | 'token_rotated' | 'device_deleted'): void;
}

export type AuthResult =
  | { ok: true; device: DeviceRecord }
  | { ok: false; reason: 'unknown_token' | 'device_disabled' | 'unavailable' | 'rate_limited' };

/**
 * What the transports need of the device registry (services/ingest/device-auth.ts implements it): a token's
 * device, and the tracking of live sessions so that a revoked device is cut off.
 */
export interface DeviceAuthenticator {
  /** `source` (the remote address) is where failed look-ups are counted and limited. */
  authenticate(token: string, source: string): Promise<AuthResult>;
  /** Tracks a live session; returns the function that forgets it (call it when the connection closes). */
  register(session: DeviceSession): () => void;
}
