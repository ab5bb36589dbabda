import { PgError, pgErrorCode, type Queryable } from '../../shared/db.js';
import { conflict } from '../../shared/contracts/errors.js';
import { checkIfMatch, type Precondition } from '../preconditions.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { SqlParams } from '../sql.js';

export const USER_ROLES = ['admin', 'dispatcher', 'technician', 'viewer'] as const;
export type UserRole = (typeof USER_ROLES)[number];

export interface User {
  id: string;
  email: string;
  name: string | null;
  role: UserRole;
  disabled: boolean;
  disabled_at: Date | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export interface LoginCandidate {
  id: string;
  role: string;
  password_hash: string;
  disabled: boolean;
  scopes: string[];
  token_ttl_s: number;
  session_epoch: number;
}

export interface UserFilters {
  role?: UserRole;
  status?: 'active' | 'disabled';
  email?: string;
}

export const USER_SORT_FIELDS = ['created_at', 'email', 'name'] as const;

const COLUMNS = `u.id, u.email, u.name, u.role, u.disabled_at is not null as disabled, u.disabled_at, u.version, u.created_at, u.updated_at`;

/** Users of the tenant set on `db`; row-level security keeps every other tenant's users out of sight. */
export function createUserRepository(db: Queryable) {
  return {
    list(filters: UserFilters, query: ListQuery): Promise<ListResult<User>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.role) where.push(`u.role = ${params.add(filters.role)}`);
      if (filters.status) where.push(filters.status === 'disabled' ? 'u.disabled_at is not null' : 'u.disabled_at is null');
      if (filters.email) where.push(`lower(u.email) = lower(${params.add(filters.email)})`);
      return listPage<User>(db, {
        select: COLUMNS,
        from: 'users u',
        where,
        params,
        id: 'u.id',
        sortable: { created_at: 'u.created_at', email: 'lower(u.email)', name: "coalesce(u.name, '')" },
        defaultSort: 'created_at',
      }, query);
    },

    async find(id: string): Promise<User | null> {
      const { rows } = await db.query<User>(`select ${COLUMNS} from users u where u.id = $1`, [id]);
      return rows[0] ?? null;
    },

    async create(input: { email: string; passwordHash: string; name: string | null; role: UserRole }): Promise<User> {
      try {
        const { rows } = await db.query<User>(
          `insert into users as u (tenant_id, email, name, role, password_hash) values (app_tenant(), $1, $2, $3, $4)
           returning ${COLUMNS}`,
          [input.email, input.name, input.role, input.passwordHash],
        );
        return rows[0]!;
      } catch (err) {
        throw uniqueEmail(err);
      }
    },

    async update(id: string, changes: { name?: string | null; role?: UserRole; disabled?: boolean; passwordHash?: string },
      precondition: Precondition | null = null): Promise<User | null> {
      if (!(await checkIfMatch(db, 'users', id, precondition, 'user'))) return null;
      const params = new SqlParams();
      const idParam = params.add(id);
      const sets = ['updated_at = now()'];
      if (changes.name !== undefined) sets.push(`name = ${params.add(changes.name)}`);
      if (changes.role !== undefined) sets.push(`role = ${params.add(changes.role)}`);
      if (changes.passwordHash !== undefined) sets.push(`password_hash = ${params.add(changes.passwordHash)}`);
      if (changes.disabled !== undefined) {
        // Disabling twice keeps the first time; its API keys stop working at once (the key lookup joins users).
        sets.push(changes.disabled ? 'disabled_at = coalesce(disabled_at, now())' : 'disabled_at = null');
      }
      const { rows } = await db.query<User>(
        `update users u set ${sets.join(', ')} where u.id = ${idParam} returning ${COLUMNS}`,
        params.values,
      );
      return rows[0] ?? null;
    },

    async delete(id: string, precondition: Precondition | null = null): Promise<boolean> {
      if (!(await checkIfMatch(db, 'users', id, precondition, 'user'))) return false;
      const { rowCount } = await db.query('delete from users where id = $1', [id]);
      return rowCount === 1;
    },

    async findForLogin(email: string): Promise<LoginCandidate | null> {
      const { rows } = await db.query<LoginCandidate>(
        `select u.id, u.role, u.password_hash, u.disabled_at is not null as disabled, r.scopes, o.token_ttl_s, u.session_epoch
           from users u
           join roles r on r.name = u.role
           join organizations o on o.id = u.tenant_id
          where lower(u.email) = lower($1)`,
        [email],
      );
      return rows[0] ?? null;
    },
  };
}

export type UserRepository = ReturnType<typeof createUserRepository>;

function uniqueEmail(err: unknown): unknown {
  if (pgErrorCode(err) === PgError.uniqueViolation) {
    return conflict('a user with this email already exists', [{ path: 'email', message: 'is already taken' }]);
  }
  return err;
}
