import type { Queryable } from '../../shared/db.js';
import { MAX_FENCE_VERTICES_PER_TENANT, MAX_FENCES_PER_TENANT, type FenceGeometry } from '../../shared/geofence/fence-geometry.js';
import type { FenceSchedule } from '../../shared/geofence/fence-schedule.js';
import type { FenceKind } from '../../shared/contracts/domain.js';
import { conflict, type Issue } from '../../shared/contracts/errors.js';
import { checkIfMatch, type Precondition } from '../preconditions.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { SqlParams } from '../sql.js';

export interface Geofence {
  id: string;
  name: string;
  kind: FenceKind;
  geometry: FenceGeometry;
  radius_m: number | null;
  width_m: number | null;
  confirm_fixes: number;
  schedule: FenceSchedule | null;
  asset_filter: { asset_ids: string[] } | null;
  metadata: Record<string, unknown>;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** A fence as stored: the shape already validated and normalized by the caller. */
export type GeofenceFields = Omit<Geofence, 'id' | 'version' | 'created_at' | 'updated_at'>;

export interface GeofenceFilters {
  kind?: FenceKind;
  name?: string;
}

export const GEOFENCE_SORT_FIELDS = ['created_at', 'name'] as const;

const COLUMNS = `g.id, g.name, g.kind, g.geometry, g.radius_m, g.width_m, g.confirm_fixes, g.schedule, g.asset_filter,
  g.metadata, g.version, g.created_at, g.updated_at`;

const WRITABLE = ['name', 'kind', 'geometry', 'radius_m', 'width_m', 'confirm_fixes', 'schedule', 'asset_filter', 'metadata'] as const;
const JSON_COLUMNS = new Set<string>(['geometry', 'schedule', 'asset_filter', 'metadata']);

/**
 * Geofences of the tenant set on `db`. Every write fires the `geofence_changed` notice (a trigger
 * of migration 001), which the running evaluators follow within a second.
 */
export function createGeofenceRepository(db: Queryable) {
  const find = async (id: string, forUpdate = false): Promise<Geofence | null> => {
    const { rows } = await db.query<Geofence>(`select ${COLUMNS} from geofences g where g.id = $1${forUpdate ? ' for update' : ''}`, [id]);
    return rows[0] ?? null;
  };

  return {
    find,

    list(filters: GeofenceFilters, query: ListQuery): Promise<ListResult<Geofence>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.kind) where.push(`g.kind = ${params.add(filters.kind)}`);
      if (filters.name) where.push(`g.name ilike ${params.add(`%${filters.name.replace(/[\\%_]/g, '\\$&')}%`)}`);
      return listPage<Geofence>(db, {
        select: COLUMNS,
        from: 'geofences g',
        where,
        params,
        id: 'g.id',
        sortable: { created_at: 'g.created_at', name: 'g.name' },
        defaultSort: 'created_at',
      }, query);
    },

    /** Asset ids of a filter that name no asset of this tenant, as issues. */
    async unknownAssets(assetIds: string[]): Promise<Issue[]> {
      if (assetIds.length === 0) return [];
      const { rows } = await db.query<{ id: string }>('select id from assets where id = any($1::uuid[])', [assetIds]);
      const known = new Set(rows.map((r) => r.id));
      return assetIds.flatMap((id, i) => (known.has(id) ? [] : [{ path: `asset_filter.asset_ids.${i}`, message: 'no asset with this id' }]));
    },

    /**
     * Keeps the tenant within its caps with `geometry` added (or, for `replacing`, in place of that
     * fence's): 409 past them. The organization row is locked first (`for no key update`, which foreign
     * keys' share locks do not wait for), so two creates racing each other are counted one after the other.
     */
    async checkTenantCaps(geometry: unknown, replacing: string | null): Promise<void> {
      await db.query('select 1 from organizations where id = app_tenant() for no key update');
      const { rows } = await db.query<{ fences: number; vertices: number }>(
        `with fences (geometry) as (
           select geometry from geofences where id is distinct from $2::uuid
           union all select $1::jsonb)
         select count(*)::int as fences,
                coalesce(sum(case geometry->>'type'
                  when 'Polygon' then (select sum(jsonb_array_length(r)) from jsonb_array_elements(geometry->'coordinates') r)
                  when 'MultiPolygon' then (select sum(jsonb_array_length(r))
                                              from jsonb_array_elements(geometry->'coordinates') p, jsonb_array_elements(p) r)
                  when 'LineString' then jsonb_array_length(geometry->'coordinates')
                  else 1 end), 0)::int as vertices
           from fences`,
        [JSON.stringify(geometry), replacing],
      );
      const { fences, vertices } = rows[0]!;
      if (fences > MAX_FENCES_PER_TENANT) throw conflict(`the organization has reached its limit of ${MAX_FENCES_PER_TENANT} geofences`);
      if (vertices > MAX_FENCE_VERTICES_PER_TENANT) {
        throw conflict(`the organization's geofences would have ${vertices} vertices; at most ${MAX_FENCE_VERTICES_PER_TENANT} are allowed`,
          [{ path: 'geometry', message: 'takes the organization past its vertex limit' }]);
      }
    },

    async create(fields: GeofenceFields): Promise<Geofence> {
      const { rows } = await db.query<{ id: string }>(
        `insert into geofences (tenant_id, name, kind, geometry, radius_m, width_m, confirm_fixes, schedule, asset_filter, metadata)
         values (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9) returning id`,
        [fields.name, fields.kind, JSON.stringify(fields.geometry), fields.radius_m, fields.width_m, fields.confirm_fixes,
          json(fields.schedule), json(fields.asset_filter), JSON.stringify(fields.metadata)],
      );
      return (await find(rows[0]!.id))!;
    },

    async update(id: string, changes: Partial<GeofenceFields>): Promise<Geofence | null> {
      const params = new SqlParams();
      const idParam = params.add(id);
      const sets = ['updated_at = now()'];
      for (const column of WRITABLE) {
        const value = changes[column];
        if (value === undefined) continue;
        sets.push(`${column} = ${params.add(JSON_COLUMNS.has(column) ? json(value) : value)}`);
      }
      const { rowCount } = await db.query(`update geofences set ${sets.join(', ')} where id = ${idParam}`, params.values);
      return rowCount ? find(id) : null;
    },

    async delete(id: string, precondition: Precondition | null = null): Promise<boolean> {
      if (!(await checkIfMatch(db, 'geofences', id, precondition, 'geofence'))) return false;
      const { rowCount } = await db.query('delete from geofences where id = $1', [id]);
      return rowCount === 1;
    },
  };
}

const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));
export type GeofenceRepository = ReturnType<typeof createGeofenceRepository>;
