import fp from 'fastify-plugin';
import { readAsTenant, withTenant, type Pool, type Queryable } from '../../shared/db.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Runs `work` on one pooled connection as the caller's tenant (`set_config('app.tenant_id', …, true)`),
     * so row-level security and the time-series views see that tenant only. Call it once per handler and
     * do all of the request's queries inside. GET and HEAD read: each statement is its own read-only
     * transaction, one round trip (`readAsTenant`); other methods get one transaction (`withTenant`).
     */
    tenantDb<T>(work: (db: Queryable) => Promise<T>): Promise<T>;
  }
  interface FastifyInstance {
    /** One transaction as the tenant, for public routes where the tenant comes from the request itself (login). */
    withTenant<T>(tenantId: string, work: (db: Queryable) => Promise<T>): Promise<T>;
  }
}

const READS = new Set(['GET', 'HEAD']);

export const tenantDbPlugin = fp<{ pool: Pool }>(
  async (app, { pool }) => {
    app.decorate('withTenant', <T>(tenantId: string, work: (db: Queryable) => Promise<T>) => withTenant(pool, tenantId, work));
    app.decorateRequest('tenantDb', function tenantDb<T>(this: { method: string; principal: { tenantId: string } }, work: (db: Queryable) => Promise<T>) {
      return (READS.has(this.method) ? readAsTenant : withTenant)(pool, this.principal.tenantId, work);
    });
  },
  { name: 'fieldops-tenant-db' },
);
