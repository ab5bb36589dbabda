import { PgError, pgErrorCode, type Queryable } from '../../shared/db.js';
import { conflict } from '../../shared/contracts/errors.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { checkIfMatch, type Precondition } from '../preconditions.js';
import { assignments, containsPattern, SqlParams } from '../sql.js';

export interface Certification {
  name: string;
  issuer: string | null;
  /** YYYY-MM-DD; null for one that does not expire. */
  expires_on: string | null;
}

export interface Employee {
  id: string;
  name: string;
  email: string | null;
  phone: string | null;
  role: string | null;
  badge_code: string | null;
  certifications: Certification[];
  /** The earliest expiry among the certifications. */
  certification_expires_on: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export type EmployeeFields = Pick<Employee, 'name' | 'email' | 'phone' | 'role' | 'badge_code' | 'certifications'>;

export interface EmployeeFilters {
  name?: string;
  email?: string;
  role?: string;
  badge_code?: string;
  certification_expires_before?: string;
}

export const EMPLOYEE_SORT_FIELDS = ['created_at', 'updated_at', 'name', 'certification_expires_on'] as const;

const COLUMNS = `e.id, e.name, e.email, e.phone, e.role, e.badge_code, e.certifications,
  to_char(e.certification_expires_on, 'YYYY-MM-DD') as certification_expires_on, e.version, e.created_at, e.updated_at`;
const WRITABLE = ['name', 'email', 'phone', 'role', 'badge_code', 'certifications'] as const;

/**
 * The roster of the tenant set on `db`. Attendance punches name an employee by id or by badge code
 * (services/geofence/punch-repository.ts); a badge code is unique within the tenant.
 */
export function createEmployeeRepository(db: Queryable) {
  return {
    list(filters: EmployeeFilters, query: ListQuery): Promise<ListResult<Employee>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.name) where.push(`e.name ilike ${params.add(containsPattern(filters.name))}`);
      if (filters.email) where.push(`lower(e.email) = lower(${params.add(filters.email)})`);
      if (filters.role) where.push(`lower(e.role) = lower(${params.add(filters.role)})`);
      if (filters.badge_code) where.push(`e.badge_code = ${params.add(filters.badge_code)}`);
      // Some certification expires before the date (already expired ones included).
      if (filters.certification_expires_before) where.push(`e.certification_expires_on < ${params.add(filters.certification_expires_before)}::date`);
      return listPage<Employee>(db, {
        select: COLUMNS,
        from: 'employees e',
        where,
        params,
        id: 'e.id',
        sortable: {
          created_at: 'e.created_at',
          updated_at: 'e.updated_at',
          name: 'lower(e.name)',
          certification_expires_on: "coalesce(e.certification_expires_on, 'infinity'::date)",
        },
        defaultSort: 'created_at',
      }, query);
    },

    async find(id: string): Promise<Employee | null> {
      const { rows } = await db.query<Employee>(`select ${COLUMNS} from employees e where e.id = $1`, [id]);
      return rows[0] ?? null;
    },

    async create(fields: EmployeeFields): Promise<Employee> {
      const { rows } = await db.query<Employee>(
        `insert into employees as e (tenant_id, name, email, phone, role, badge_code, certifications)
         values (app_tenant(), $1, $2, $3, $4, $5, $6) returning ${COLUMNS}`,
        [fields.name, fields.email, fields.phone, fields.role, fields.badge_code, JSON.stringify(fields.certifications)],
      ).catch(badgeTaken);
      return rows[0]!;
    },

    async update(id: string, changes: Partial<EmployeeFields>, precondition: Precondition | null): Promise<Employee | null> {
      if (!(await checkIfMatch(db, 'employees', id, precondition, 'employee'))) return null;
      const params = new SqlParams();
      const idParam = params.add(id);
      const sets = ['updated_at = now()', ...assignments(params, changes, WRITABLE, ['certifications'])];
      const { rows } = await db.query<Employee>(`update employees e set ${sets.join(', ')} where e.id = ${idParam} returning ${COLUMNS}`, params.values)
        .catch(badgeTaken);
      return rows[0] ?? null;
    },
  };
}

/** One badge per employee within a tenant (index `employees_badge`). */
function badgeTaken(err: unknown): never {
  if (pgErrorCode(err) === PgError.uniqueViolation && (err as { constraint?: string }).constraint === 'employees_badge') {
    throw conflict('another employee has this badge code', [{ path: 'badge_code', message: 'is taken by another employee' }]);
  }
  throw err;
}
