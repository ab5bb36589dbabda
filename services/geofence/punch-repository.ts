import type { Queryable } from '../shared/db.js';

const UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

export interface EmployeeRef {
  tenantId: string;
  ref: string;
}

export interface PunchVerificationRow {
  id: string;
  tsMs: number;
  employeeId: string | null;
  gpsVerified: boolean;
  siteId: string | null;
  distanceM: number | null;
}

/** Punch-side SQL of the worker: who punched, and what verification found. */
export function createPunchRepository(db: Queryable) {
  return {
    /**
     * Resolves each reference to an employee of its tenant, by id first, then by badge code; null
     * when none matches. One query for a whole batch.
     */
    async resolveEmployees(refs: EmployeeRef[]): Promise<(string | null)[]> {
      if (refs.length === 0) return [];
      const { rows } = await db.query<{ n: string; employee_id: string | null }>(
        `select r.n, coalesce(by_id.id, by_badge.id) as employee_id
           from unnest($1::uuid[], $2::text[]) with ordinality as r (tenant_id, ref, n)
           left join employees by_id on by_id.tenant_id = r.tenant_id
                and by_id.id = (case when r.ref ~ '${UUID}' then r.ref::uuid end)
           left join employees by_badge on by_badge.tenant_id = r.tenant_id and by_badge.badge_code = r.ref
          order by r.n`,
        [refs.map((r) => r.tenantId), refs.map((r) => r.ref)],
      );
      return rows.map((r) => r.employee_id);
    },

    /**
     * The fence each punching device's site stands for: a device's `site_id` names a site (whose
     * `site` geofence is the fence) or, as before sites existed, the geofence itself. Null when it names
     * neither, or a site without a fence. One query for a whole batch.
     */
    async resolveSiteFences(refs: { tenantId: string; siteId: string | null }[]): Promise<(string | null)[]> {
      if (!refs.some((r) => r.siteId)) return refs.map(() => null);
      const { rows } = await db.query<{ n: string; fence_id: string | null }>(
        `select r.n, coalesce(s.geofence_id, g.id) as fence_id
           from unnest($1::uuid[], $2::uuid[]) with ordinality as r (tenant_id, site_ref, n)
           left join sites s on s.tenant_id = r.tenant_id and s.id = r.site_ref
           left join geofences g on g.tenant_id = r.tenant_id and g.id = r.site_ref
          order by r.n`,
        [refs.map((r) => r.tenantId), refs.map((r) => r.siteId)],
      );
      return rows.map((r) => r.fence_id);
    },

    /**
     * Keeps the punch records up to date with who punched and whether GPS verified it, through the one
     * function that may write them (migration 006): the worker has no privilege on `punches` itself.
     */
    async recordVerifications(rows: PunchVerificationRow[]): Promise<void> {
      if (rows.length === 0) return;
      await db.query(
        'select record_punch_verifications($1::bigint[], $2::timestamptz[], $3::uuid[], $4::boolean[], $5::uuid[], $6::real[])',
        [
          rows.map((r) => r.id),
          rows.map((r) => new Date(r.tsMs).toISOString()),
          rows.map((r) => r.employeeId),
          rows.map((r) => r.gpsVerified),
          rows.map((r) => r.siteId),
          rows.map((r) => r.distanceM),
        ],
      );
    },
  };
}
