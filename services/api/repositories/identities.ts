import type { Queryable } from '../../shared/db.js';

export interface Identity {
  user: { id: string; email: string; name: string | null; role: string } | null;
  api_key: { id: string; name: string; prefix: string } | null;
  organization: { id: string; name: string; plan: string; addons: string[] } | null;
}

/** Who a principal is, in the words of the database (for `GET /v1/me`). */
export function createIdentityRepository(db: Queryable) {
  return {
    async describe(userId: string, apiKeyId: string | undefined): Promise<Identity> {
      const { rows } = await db.query<Identity>({
        // Every /v1/me runs it: prepared once per connection.
        name: 'fieldops_identity',
        text: `select
           (select json_build_object('id', u.id, 'email', u.email, 'name', u.name, 'role', u.role) from users u where u.id = $1) as user,
           (select json_build_object('id', k.id, 'name', k.name, 'prefix', k.prefix) from api_keys k where k.id = $2) as api_key,
           (select json_build_object('id', o.id, 'name', o.name, 'plan', o.plan, 'addons', o.addons)
              from organizations o where o.id = app_tenant()) as organization`,
        values: [userId, apiKeyId ?? null],
      });
      return rows[0]!;
    },
  };
}
