import type { StreamBus, StreamEntry } from '../shared/bus.js';
import { readAsTenant, type Pool } from '../shared/db.js';
import type { EventType } from '../shared/contracts/events.js';
import { decodeEvent, type StreamNames } from '../shared/contracts/stream-codec.js';
import { eventMessage } from './live-protocol.js';
import type { QueuedEvent } from './live-socket.js';
import { compareStreamIds, parseStreamId } from '../shared/stream-ids.js';

export interface ReplaySources {
  bus: StreamBus;
  streams: StreamNames;
  /** The API role's pool: it reads `events` under row-level security with the tenant set. */
  pool: Pool;
  pageSize?: number;
}

export type EventReplay = (tenantId: string, since: string) => AsyncIterable<QueuedEvent[]>;

/**
 * The events of a tenant after `since`, oldest first, in pages. They come from the stream while it
 * still holds them; the part it has trimmed comes from the `events` table, whose rows carry the stream
 * id the relay got (relayed in id order, so stream order). The stream's first id is checked again
 * before every page, because trimming may overtake a long replay.
 */
export function eventReplay(sources: ReplaySources): EventReplay {
  const pageSize = sources.pageSize ?? 500;
  return async function* replay(tenantId, since) {
    const stream = sources.streams.events(tenantId);
    let cursor = since;
    for (;;) {
      const firstId = await sources.bus.firstId(stream);
      const streamEmpty = firstId === '0-0';
      if (streamEmpty || compareStreamIds(cursor, firstId) < 0) {
        const rows = await eventsFromTable(sources.pool, tenantId, cursor, streamEmpty ? null : firstId, pageSize);
        if (rows.length > 0) {
          yield rows;
          cursor = rows[rows.length - 1]!.id;
          if (rows.length === pageSize) continue;
        }
        if (streamEmpty) return;
      }
      const entries = await sources.bus.range(stream, `(${cursor}`, '+', pageSize);
      const page: QueuedEvent[] = [];
      for (const entry of entries) {
        const message = messageOfEntry(tenantId, entry);
        if (message) page.push({ id: entry.id, message });
      }
      if (page.length > 0) yield page;
      if (entries.length < pageSize) return;
      cursor = entries[entries.length - 1]!.id;
    }
  };
}

/** The message of one `events:{tenant}` entry, or null when it is not a well-formed envelope of that tenant. */
export function messageOfEntry(tenantId: string, entry: StreamEntry): string | null {
  const envelope = decodeEvent(entry, tenantId);
  return envelope && eventMessage(entry.id, envelope);
}

interface EventRow {
  stream_id: string;
  type: EventType;
  tenant_id: string;
  occurred_at: Date;
  data: Record<string, unknown>;
}

// The stream position as numbers, spelled as in migrations/005.realtime.sql so that its index serves.
const STREAM_MS = "split_part(stream_id, '-', 1)::bigint";
const STREAM_SEQ = "split_part(stream_id, '-', 2)::bigint";

async function eventsFromTable(pool: Pool, tenantId: string, after: string, before: string | null, limit: number): Promise<QueuedEvent[]> {
  const from = parseStreamId(after)!;
  const to = before ? parseStreamId(before)! : null;
  // A read: one round trip with the tenant set in it (services/shared/db.ts).
  const rows = await readAsTenant(pool, tenantId, async (db) => {
    const result = await db.query<EventRow>(
      `select stream_id, type, tenant_id, occurred_at, data
         from events
        where tenant_id = $1 and stream_id is not null
          and (${STREAM_MS}, ${STREAM_SEQ}) > ($2::bigint, $3::bigint)
          and ($4::bigint is null or (${STREAM_MS}, ${STREAM_SEQ}) < ($4::bigint, $5::bigint))
        order by ${STREAM_MS}, ${STREAM_SEQ}
        limit $6`,
      [tenantId, from.ms, from.seq, to?.ms ?? null, to?.seq ?? null, limit],
    );
    return result.rows;
  });
  return rows.map((row) => ({
    id: row.stream_id,
    message: eventMessage(row.stream_id, {
      event: row.type,
      tenant_id: row.tenant_id,
      occurred_at: row.occurred_at.toISOString(),
      data: row.data,
    }),
  }));
}
