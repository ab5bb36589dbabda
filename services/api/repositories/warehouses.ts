import type { Queryable } from '../../shared/db.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { checkIfMatch, type Precondition } from '../preconditions.js';
import { stillReferenced } from '../references.js';
import { containsPattern, SqlParams } from '../sql.js';

/** A description ("Depot North, aisle 3") or coordinates. */
export type WarehouseLocation = string | { lat: number; lon: number };

export interface Warehouse {
  id: string;
  name: string;
  location: WarehouseLocation | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export interface WarehouseFields {
  name?: string;
  location?: WarehouseLocation | null;
}

export const WAREHOUSE_SORT_FIELDS = ['created_at', 'name'] as const;

const SELECT = 'w.id, w.name, w.location, w.version, w.created_at, w.updated_at';

/** Warehouses of the tenant set on `db`: where stock is kept (a depot, a van). */
export function createWarehouseRepository(db: Queryable) {
  const find = async (id: string): Promise<Warehouse | null> => {
    const { rows } = await db.query<Warehouse>(`select ${SELECT} from warehouses w where w.id = $1`, [id]);
    return rows[0] ?? null;
  };

  return {
    find,

    list(filters: { name?: string }, query: ListQuery): Promise<ListResult<Warehouse>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.name) where.push(`w.name ilike ${params.add(containsPattern(filters.name))}`);
      return listPage<Warehouse>(db, {
        select: SELECT, from: 'warehouses w', where, params, id: 'w.id',
        sortable: { created_at: 'w.created_at', name: 'w.name' }, defaultSort: 'created_at',
      }, query);
    },

    async create(fields: { name: string; location?: WarehouseLocation | null }): Promise<Warehouse> {
      const { rows } = await db.query<Warehouse>(
        `insert into warehouses as w (tenant_id, name, location) values (app_tenant(), $1, $2) returning ${SELECT}`,
        [fields.name, fields.location === undefined || fields.location === null ? null : JSON.stringify(fields.location)],
      );
      return rows[0]!;
    },

    async update(id: string, changes: WarehouseFields, precondition: Precondition | null): Promise<Warehouse | null> {
      if (!(await checkIfMatch(db, 'warehouses', id, precondition, 'warehouse'))) return null;
      const params = new SqlParams();
      const idParam = params.add(id);
      const sets = ['updated_at = now()'];
      if (changes.name !== undefined) sets.push(`name = ${params.add(changes.name)}`);
      if (changes.location !== undefined) sets.push(`location = ${params.add(changes.location === null ? null : JSON.stringify(changes.location))}`);
      const { rows } = await db.query<Warehouse>(`update warehouses w set ${sets.join(', ')} where w.id = ${idParam} returning ${SELECT}`, params.values);
      return rows[0] ?? null;
    },

    /** Only a warehouse that never held stock goes; one with a movement history stays (409). */
    async delete(id: string, precondition: Precondition | null): Promise<boolean> {
      if (!(await checkIfMatch(db, 'warehouses', id, precondition, 'warehouse'))) return false;
      const { rowCount } = await db.query('delete from warehouses where id = $1', [id]).catch((err: unknown) => stillReferenced(err, 'warehouse', 'stock or movements'));
      return rowCount === 1;
    },
  };
}
