import type { Queryable } from '../../shared/db.js';
import { apiKeyDisplayPrefix, newApiKey, sha256 } from '../../shared/secrets.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { SqlParams } from '../sql.js';

export interface ApiKey {
  id: string;
  name: string;
  /** The key's first characters, so that a person can tell keys apart; never the key. */
  prefix: string;
  scopes: string[];
  user_id: string;
  last_used_at: Date | null;
  revoked_at: Date | null;
  created_at: Date;
}

export interface ApiKeyFilters {
  status?: 'active' | 'revoked';
  user_id?: string;
}

export const API_KEY_SORT_FIELDS = ['created_at', 'name'] as const;

const COLUMNS = 'k.id, k.name, k.prefix, k.scopes, k.user_id, k.last_used_at, k.revoked_at, k.created_at';

/** API keys of the tenant set on `db`. Only the SHA-256 of a key is stored; the key itself is shown once. */
export function createApiKeyRepository(db: Queryable) {
  return {
    async create(input: { tenantId: string; userId: string; name: string; scopes: string[] }): Promise<ApiKey & { key: string }> {
      const key = newApiKey(input.tenantId);
      const { rows } = await db.query<ApiKey>(
        `insert into api_keys as k (tenant_id, user_id, name, prefix, key_hash, scopes)
         values (app_tenant(), $1, $2, $3, $4, $5) returning ${COLUMNS}`,
        [input.userId, input.name, apiKeyDisplayPrefix(key), sha256(key), input.scopes],
      );
      return { ...rows[0]!, key };
    },

    list(filters: ApiKeyFilters, query: ListQuery): Promise<ListResult<ApiKey>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.status) where.push(filters.status === 'revoked' ? 'k.revoked_at is not null' : 'k.revoked_at is null');
      if (filters.user_id) where.push(`k.user_id = ${params.add(filters.user_id)}`);
      return listPage<ApiKey>(db, {
        select: COLUMNS,
        from: 'api_keys k',
        where,
        params,
        id: 'k.id',
        sortable: { created_at: 'k.created_at', name: 'k.name' },
        defaultSort: '-created_at',
      }, query);
    },

    async find(id: string): Promise<ApiKey | null> {
      const { rows } = await db.query<ApiKey>(`select ${COLUMNS} from api_keys k where k.id = $1`, [id]);
      return rows[0] ?? null;
    },

    /** Revoking is permanent and idempotent; the key answers 401 from the next request on. */
    async revoke(id: string): Promise<boolean> {
      const { rowCount } = await db.query('update api_keys set revoked_at = coalesce(revoked_at, now()) where id = $1', [id]);
      return rowCount === 1;
    },

    /** Every scope any role grants: the names a key may be given. */
    async knownScopes(): Promise<Set<string>> {
      const { rows } = await db.query<{ scope: string }>('select distinct unnest(scopes) as scope from roles');
      return new Set(rows.map((r) => r.scope));
    },
  };
}

export type ApiKeyRepository = ReturnType<typeof createApiKeyRepository>;
