import { PgError, pgErrorCode, type Queryable } from '../../shared/db.js';
import { conflict } from '../../shared/contracts/errors.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { checkIfMatch, type Precondition } from '../preconditions.js';
import { checkReferences, stillReferenced } from '../references.js';
import { containsPattern, SqlParams } from '../sql.js';

export interface Location {
  lat: number;
  lon: number;
}

export interface Site {
  id: string;
  name: string;
  client_id: string | null;
  address: string | null;
  location: Location | null;
  geofence_id: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export type SiteFields = Pick<Site, 'name' | 'client_id' | 'address' | 'location' | 'geofence_id'>;

export interface SiteFilters {
  name?: string;
  client_id?: string;
  geofence_id?: string;
}

export const SITE_SORT_FIELDS = ['created_at', 'updated_at', 'name'] as const;

interface SiteRow extends Omit<Site, 'location'> {
  lat: number | null;
  lon: number | null;
}

const COLUMNS = 's.id, s.name, s.client_id, s.address, s.lat, s.lon, s.geofence_id, s.version, s.created_at, s.updated_at';

/**
 * Sites of the tenant set on `db`. A site may own one `site` geofence: attendance devices standing at
 * the site have their punches verified against it (services/geofence/punch-worker.ts resolves it).
 */
export function createSiteRepository(db: Queryable) {
  const checkLinks = (fields: Partial<SiteFields>) => checkReferences(db, [
    { path: 'client_id', table: 'clients', id: fields.client_id, what: 'client' },
    { path: 'geofence_id', table: 'geofences', id: fields.geofence_id, what: "geofence of kind 'site'", where: "kind = 'site'" },
  ]);

  return {
    list(filters: SiteFilters, query: ListQuery): Promise<ListResult<Site>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.name) where.push(`s.name ilike ${params.add(containsPattern(filters.name))}`);
      if (filters.client_id) where.push(`s.client_id = ${params.add(filters.client_id)}`);
      if (filters.geofence_id) where.push(`s.geofence_id = ${params.add(filters.geofence_id)}`);
      return listPage<SiteRow>(db, {
        select: COLUMNS,
        from: 'sites s',
        where,
        params,
        id: 's.id',
        sortable: { created_at: 's.created_at', updated_at: 's.updated_at', name: 'lower(s.name)' },
        defaultSort: 'created_at',
      }, query).then((page) => ({ ...page, data: page.data.map(toSite) }));
    },

    async find(id: string): Promise<Site | null> {
      const { rows } = await db.query<SiteRow>(`select ${COLUMNS} from sites s where s.id = $1`, [id]);
      return rows[0] ? toSite(rows[0]) : null;
    },

    async create(fields: SiteFields): Promise<Site> {
      await checkLinks(fields);
      const { rows } = await db.query<SiteRow>(
        `insert into sites as s (tenant_id, name, client_id, address, lat, lon, geofence_id)
         values (app_tenant(), $1, $2, $3, $4, $5, $6) returning ${COLUMNS}`,
        [fields.name, fields.client_id, fields.address, fields.location?.lat ?? null, fields.location?.lon ?? null, fields.geofence_id],
      ).catch(geofenceTaken);
      return toSite(rows[0]!);
    },

    async update(id: string, changes: Partial<SiteFields>, precondition: Precondition | null): Promise<Site | null> {
      if (!(await checkIfMatch(db, 'sites', id, precondition, 'site'))) return null;
      await checkLinks(changes);
      const params = new SqlParams();
      const idParam = params.add(id);
      const sets = ['updated_at = now()'];
      for (const column of ['name', 'client_id', 'address', 'geofence_id'] as const) {
        if (changes[column] !== undefined) sets.push(`${column} = ${params.add(changes[column])}`);
      }
      if (changes.location !== undefined) {
        sets.push(`lat = ${params.add(changes.location?.lat ?? null)}`, `lon = ${params.add(changes.location?.lon ?? null)}`);
      }
      const { rows } = await db.query<SiteRow>(`update sites s set ${sets.join(', ')} where s.id = ${idParam} returning ${COLUMNS}`, params.values)
        .catch(geofenceTaken);
      return rows[0] ? toSite(rows[0]) : null;
    },

    /** Devices at the site lose their site (a trigger); refused (409) while work orders name it. */
    async delete(id: string, precondition: Precondition | null): Promise<boolean> {
      if (!(await checkIfMatch(db, 'sites', id, precondition, 'site'))) return false;
      const { rowCount } = await db.query('delete from sites where id = $1', [id])
        .catch((err: unknown) => stillReferenced(err, 'site', 'work orders'));
      return rowCount === 1;
    },
  };
}

function toSite(row: SiteRow): Site {
  return {
    id: row.id,
    name: row.name,
    client_id: row.client_id,
    address: row.address,
    location: row.lat === null || row.lon === null ? null : { lat: row.lat, lon: row.lon },
    geofence_id: row.geofence_id,
    version: row.version,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** A geofence belongs to one site at most (index `sites_geofence`). */
function geofenceTaken(err: unknown): never {
  if (pgErrorCode(err) === PgError.uniqueViolation && (err as { constraint?: string }).constraint === 'sites_geofence') {
    throw conflict('the geofence already belongs to another site', [{ path: 'geofence_id', message: 'belongs to another site' }]);
  }
  throw err;
}
