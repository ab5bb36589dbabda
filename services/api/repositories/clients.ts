import type { Queryable } from '../../shared/db.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { checkIfMatch, type Precondition } from '../preconditions.js';
import { stillReferenced } from '../references.js';
import { assignments, containsPattern, SqlParams } from '../sql.js';

export interface Client {
  id: string;
  name: string;
  email: string | null;
  phone: string | null;
  address: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export type ClientFields = Pick<Client, 'name' | 'email' | 'phone' | 'address'>;

export interface ClientFilters {
  name?: string;
  email?: string;
}

export const CLIENT_SORT_FIELDS = ['created_at', 'updated_at', 'name'] as const;

const COLUMNS = 'c.id, c.name, c.email, c.phone, c.address, c.version, c.created_at, c.updated_at';
const WRITABLE = ['name', 'email', 'phone', 'address'] as const;

/** Clients (customers) of the tenant set on `db`. */
export function createClientRepository(db: Queryable) {
  return {
    list(filters: ClientFilters, query: ListQuery): Promise<ListResult<Client>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.name) where.push(`c.name ilike ${params.add(containsPattern(filters.name))}`);
      if (filters.email) where.push(`lower(c.email) = lower(${params.add(filters.email)})`);
      return listPage<Client>(db, {
        select: COLUMNS,
        from: 'clients c',
        where,
        params,
        id: 'c.id',
        sortable: { created_at: 'c.created_at', updated_at: 'c.updated_at', name: 'lower(c.name)' },
        defaultSort: 'created_at',
      }, query);
    },

    async find(id: string): Promise<Client | null> {
      const { rows } = await db.query<Client>(`select ${COLUMNS} from clients c where c.id = $1`, [id]);
      return rows[0] ?? null;
    },

    async create(fields: ClientFields): Promise<Client> {
      const { rows } = await db.query<Client>(
        `insert into clients as c (tenant_id, name, email, phone, address) values (app_tenant(), $1, $2, $3, $4) returning ${COLUMNS}`,
        [fields.name, fields.email, fields.phone, fields.address],
      );
      return rows[0]!;
    },

    async update(id: string, changes: Partial<ClientFields>, precondition: Precondition | null): Promise<Client | null> {
      if (!(await checkIfMatch(db, 'clients', id, precondition, 'client'))) return null;
      const params = new SqlParams();
      const idParam = params.add(id);
      const sets = ['updated_at = now()', ...assignments(params, changes, WRITABLE)];
      const { rows } = await db.query<Client>(`update clients c set ${sets.join(', ')} where c.id = ${idParam} returning ${COLUMNS}`, params.values);
      return rows[0] ?? null;
    },

    /** Refused (409) while sites, assets or work orders still name the client. */
    async delete(id: string, precondition: Precondition | null): Promise<boolean> {
      if (!(await checkIfMatch(db, 'clients', id, precondition, 'client'))) return false;
      const { rowCount } = await db.query('delete from clients where id = $1', [id])
        .catch((err: unknown) => stillReferenced(err, 'client', 'sites, assets or work orders'));
      return rowCount === 1;
    },
  };
}
