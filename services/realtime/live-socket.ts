import type { WebSocket } from 'uWebSockets.js';
import type { PositionRecord } from '../shared/contracts/stream-codec.js';
import type { BBox } from './live-protocol.js';

export interface PositionFilter {
  assets: Set<string> | null;
  bbox: BBox | null;
}

export interface QueuedEvent {
  id: string;
  message: string;
}

/**
 * One dispatcher's socket: the uWebSockets.js user data, so that the socket and its state travel together.
 * How positions reach it: through topics (`positionTopics`), or filtered here for a bounding box
 * (`perSocketFilter`), or held latest-per-asset in `conflated` while its buffer is over the bound.
 */
export interface LiveSocket {
  readonly tenantId: string;
  readonly userId: string;
  /** When the session token ends (null for API keys): the socket ends with it. */
  readonly expiresAtMs: number | null;
  /** The session token or API key the socket was opened with, re-checked while it is open. */
  readonly credential: string;
  ws: WebSocket<LiveSocket> | null;
  closed: boolean;
  positions: PositionFilter | null;
  positionTopics: string[];
  perSocketFilter: boolean;
  conflated: Map<string, { record: PositionRecord; message: string }> | null;
  /** Box-filtered positions of the batch being dispatched, sent corked at its end. */
  outbox: { record: PositionRecord; message: string; bytes: Buffer }[] | null;
  events: 'off' | 'replaying' | 'live';
  /** Bumped by every events (un)subscribe, so that a replay overtaken by a newer request stops. */
  eventsGeneration: number;
  /** Live events that arrived while a replay was reading, sent after it at the seam. */
  replayQueue: QueuedEvent[] | null;
  /** The last replayed id, once the replay has read everything: the seam waits for the reader to pass it. */
  seamAfter: string | null;
  expiryTimer: NodeJS.Timeout | null;
}

export function newLiveSocket(tenantId: string, userId: string, expiresAtMs: number | null, credential = ''): LiveSocket {
  return {
    tenantId,
    userId,
    expiresAtMs,
    credential,
    ws: null,
    closed: false,
    positions: null,
    positionTopics: [],
    perSocketFilter: false,
    conflated: null,
    outbox: null,
    events: 'off',
    eventsGeneration: 0,
    replayQueue: null,
    seamAfter: null,
    expiryTimer: null,
  };
}
