import type { Queryable } from '../../shared/db.js';
import type { Plan } from '../../shared/contracts/domain.js';

export interface OrganizationPlan {
  plan: Plan;
  addons: string[];
}

export interface OrganizationSummary extends OrganizationPlan {
  id: string;
  name: string;
  token_ttl_s: number;
}

/** Organization reads. The database only shows the tenant set on `db` (row-level security). */
export function createOrganizationRepository(db: Queryable) {
  return {
    async findCurrent(): Promise<OrganizationSummary | null> {
      const { rows } = await db.query<OrganizationSummary>(
        'select id, name, plan, addons, token_ttl_s from organizations where id = app_tenant()',
      );
      return rows[0] ?? null;
    },
  };
}
