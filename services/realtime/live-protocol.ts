/**
 * The live socket's messages (docs/design.md, "Live contract"): what dispatchers send, and what they are sent.
 * Server messages are built as strings once and handed to uWebSockets.js for every subscriber.
 */
import type { EventEnvelope } from '../shared/contracts/events.js';
import { shardKey, type PositionRecord } from '../shared/contracts/stream-codec.js';
import { formatStreamId, parseStreamId } from '../shared/stream-ids.js';

export type Channel = 'positions' | 'events';
const CHANNELS: readonly Channel[] = ['positions', 'events'];

/** `[minLon, minLat, maxLon, maxLat]`; minLon > maxLon means the box crosses the antimeridian. */
export type BBox = readonly [number, number, number, number];

export interface SubscribeRequest {
  type: 'subscribe';
  channels: Set<Channel>;
  /** Asset ids (or device ids of devices not linked to an asset); null: every asset of the tenant. */
  assets: Set<string> | null;
  bbox: BBox | null;
  /** Canonical stream id after which missed events are replayed. */
  since: string | null;
}

export interface UnsubscribeRequest {
  type: 'unsubscribe';
  channels: Set<Channel>;
  assets: Set<string> | null;
}

export type ClientRequest = SubscribeRequest | UnsubscribeRequest;

export class BadRequest extends Error {}

const MAX_ASSETS = 5000;
const MAX_ID_LENGTH = 100;

export function parseClientRequest(text: string): ClientRequest {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadRequest('message is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('message must be a JSON object');
  const message = body as Record<string, unknown>;
  if (message.type !== 'subscribe' && message.type !== 'unsubscribe') {
    throw new BadRequest('type must be "subscribe" or "unsubscribe"');
  }
  const channels = parseChannels(message.channels);
  const assets = parseAssets(message.assets);
  if (message.type === 'unsubscribe') return { type: 'unsubscribe', channels, assets };

  const bbox = parseBBox(message.bbox);
  let since: string | null = null;
  if (message.since !== undefined && message.since !== null) {
    const parsed = typeof message.since === 'string' ? parseStreamId(message.since) : null;
    if (!parsed) throw new BadRequest('since must be an event id such as "1700000000000-0"');
    if (!channels.has('events')) throw new BadRequest('since needs the "events" channel');
    since = formatStreamId(parsed);
  }
  return { type: 'subscribe', channels, assets, bbox, since };
}

function parseChannels(value: unknown): Set<Channel> {
  if (!Array.isArray(value) || value.length === 0) throw new BadRequest('channels must be a non-empty array of "positions", "events"');
  const channels = new Set<Channel>();
  for (const channel of value) {
    if (!CHANNELS.includes(channel as Channel)) throw new BadRequest(`unknown channel ${JSON.stringify(channel)} (channels: positions, events)`);
    channels.add(channel as Channel);
  }
  return channels;
}

function parseAssets(value: unknown): Set<string> | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || value.length > MAX_ASSETS) throw new BadRequest(`assets must be an array of at most ${MAX_ASSETS} ids`);
  for (const id of value) {
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) throw new BadRequest('assets must hold id strings');
  }
  return new Set(value as string[]);
}

function parseBBox(value: unknown): BBox | null {
  if (value === undefined || value === null) return null;
  const invalid = () => new BadRequest('bbox must be [minLon, minLat, maxLon, maxLat] in degrees');
  if (!Array.isArray(value) || value.length !== 4 || !value.every((n) => typeof n === 'number' && Number.isFinite(n))) throw invalid();
  const [minLon, minLat, maxLon, maxLat] = value as [number, number, number, number];
  if (minLat > maxLat || minLat < -90 || maxLat > 90 || minLon < -180 || minLon > 180 || maxLon < -180 || maxLon > 180) throw invalid();
  return [minLon, minLat, maxLon, maxLat];
}

export function insideBBox([minLon, minLat, maxLon, maxLat]: BBox, lon: number, lat: number): boolean {
  if (lat < minLat || lat > maxLat) return false;
  return minLon <= maxLon ? lon >= minLon && lon <= maxLon : lon >= minLon || lon <= maxLon;
}

/** The key positions are conflated and asset-filtered by: the stream's shard key (the asset, or the device without one). */
export const assetKeyOf = (record: PositionRecord): string => shardKey(record.asset_id, record.device_id);

export function positionMessage(record: PositionRecord): string {
  return JSON.stringify({
    type: 'position',
    asset_id: record.asset_id,
    device_id: record.device_id,
    ts: new Date(record.ts_ms).toISOString(),
    lat: record.lat,
    lon: record.lon,
    speed_mps: record.speed_mps ?? null,
    heading_deg: record.heading_deg ?? null,
  });
}

/** The envelope (docs/design.md, "Events") with the stream entry's id, which is what `since` takes. */
export function eventMessage(streamId: string, envelope: Omit<EventEnvelope, 'id'>): string {
  return JSON.stringify({
    type: 'event',
    id: streamId,
    event: envelope.event,
    tenant_id: envelope.tenant_id,
    occurred_at: envelope.occurred_at,
    data: envelope.data,
  });
}

export function errorMessage(code: 'bad_request' | 'internal', message: string): string {
  return JSON.stringify({ type: 'error', error: { code, message } });
}

/** Close codes a dispatcher's client acts on (4000–4999 are the application's). */
export const CloseCode = {
  goingAway: 1001,
  internal: 1011,
  tokenExpired: 4001,
  slowConsumer: 4008,
} as const;

export const CloseReason = {
  goingAway: 'server shutting down: reconnect with since',
  replayFailed: 'event replay failed: reconnect with since',
  tokenExpired: 'token expired',
  credentialsRevoked: 'credentials revoked',
  slowConsumer: 'slow consumer: resume with since',
} as const;
