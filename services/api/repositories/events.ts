import type { Queryable } from '../../shared/db.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { SqlParams } from '../sql.js';

/** An event in the envelope of docs/design.md, "Events", plus where it sits in `events:{tenant}`. */
export interface EventLogEntry {
  id: string;
  event: string;
  tenant_id: string;
  occurred_at: Date;
  data: Record<string, unknown>;
  recorded_at: Date;
  stream_id: string | null;
}

export interface EventFilters {
  type?: string;
  asset_id?: string;
  device_id?: string;
  employee_id?: string;
  geofence_id?: string;
  from?: string;
  to?: string;
}

export const EVENT_SORT_FIELDS = ['occurred_at', 'id'] as const;

/** The tenant's event log (the outbox table, under row-level security). */
export function createEventRepository(db: Queryable) {
  return {
    list(filters: EventFilters, query: ListQuery): Promise<ListResult<EventLogEntry>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.type) {
        const types = filters.type.split(',').map((t) => t.trim()).filter(Boolean);
        where.push(`e.type = any(${params.add(types)}::text[])`);
      }
      for (const column of ['asset_id', 'device_id', 'employee_id', 'geofence_id'] as const) {
        if (filters[column]) where.push(`e.${column} = ${params.add(filters[column])}`);
      }
      if (filters.from) where.push(`e.occurred_at >= ${params.add(filters.from)}`);
      if (filters.to) where.push(`e.occurred_at < ${params.add(filters.to)}`);
      return listPage<EventLogEntry>(db, {
        select: 'e.id, e.type as event, e.tenant_id, e.occurred_at, e.data, e.recorded_at, e.stream_id',
        from: 'events e',
        where,
        params,
        id: 'e.id',
        sortable: { occurred_at: 'e.occurred_at', id: 'e.id' },
        defaultSort: '-occurred_at',
        // A high-volume log: counting every match would cost more than the page.
        total: false,
      }, query);
    },
  };
}
