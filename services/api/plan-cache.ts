import type { Pool } from '../shared/db.js';
import { readAsTenant } from '../shared/db.js';
import { createOrganizationRepository, type OrganizationPlan } from './repositories/organizations.js';

export interface PlanLookup {
  /** The tenant's plan and add-ons, or null when the organization no longer exists. */
  get(tenantId: string): Promise<OrganizationPlan | null>;
}

/**
 * Session tokens do not carry the plan (it can change while they live), so sessions look it up.
 * A few seconds of caching turns that into one query per tenant and interval instead of one per
 * request; a plan change reaches every API process within `ttlMs`.
 */
export function createPlanLookup(pool: Pool, ttlMs = 5000): PlanLookup {
  const cache = new Map<string, { value: Promise<OrganizationPlan | null>; expiresAt: number }>();
  return {
    get(tenantId) {
      const now = Date.now();
      const hit = cache.get(tenantId);
      if (hit && hit.expiresAt > now) return hit.value;
      const value = readAsTenant(pool, tenantId, async (db) => {
        const org = await createOrganizationRepository(db).findCurrent();
        return org ? { plan: org.plan, addons: org.addons } : null;
      });
      cache.set(tenantId, { value, expiresAt: now + ttlMs });
      // A failed lookup is not remembered: the next request tries again.
      value.catch(() => {
        if (cache.get(tenantId)?.value === value) cache.delete(tenantId);
      });
      if (cache.size > 10_000) sweep(cache, now);
      return value;
    },
  };
}

function sweep(cache: Map<string, { expiresAt: number }>, now: number): void {
  for (const [key, entry] of cache) if (entry.expiresAt <= now) cache.delete(key);
}
