import fp from 'fastify-plugin';
import { withTenant, type Pool, type PoolClient } from '../../shared/db.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Runs `work` in one transaction on one pooled connection, with the caller's tenant set
     * (`set_config('app.tenant_id', …, true)`), so row-level security and the time-series views see
     * that tenant only. Call it once per handler and do all of the request's queries inside.
     */
    tenantDb<T>(work: (db: PoolClient) => Promise<T>): Promise<T>;
  }
  interface FastifyInstance {
    /** The same, for public routes where the tenant comes from the request itself (login). */
    withTenant<T>(tenantId: string, work: (db: PoolClient) => Promise<T>): Promise<T>;
  }
}

export const tenantDbPlugin = fp<{ pool: Pool }>(
  async (app, { pool }) => {
    app.decorate('withTenant', <T>(tenantId: string, work: (db: PoolClient) => Promise<T>) => withTenant(pool, tenantId, work));
    app.decorateRequest('tenantDb', function tenantDb<T>(this: { principal: { tenantId: string } }, work: (db: PoolClient) => Promise<T>) {
      return withTenant(pool, this.principal.tenantId, work);
    });
  },
  { name: 'fieldops-tenant-db' },
);
