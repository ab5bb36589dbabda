import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { addRouteHook } from './route-hooks.js';
import { withTenant, type Pool, type Queryable } from '../../shared/db.js';
import { createIdempotencyStore, IDEMPOTENCY_HEADER, idempotencyClaim, REPLAYED_HEADER, type IdempotencyClaim } from '../idempotency.js';
import { setEtag } from './versions.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Whether `Idempotency-Key` applies to the route: its handler then answers through `reply.commit`.
     * `'sealed'`: the answer shows a secret (a token, a key), so it is stored encrypted. Every POST under
     * the auth layer must say (true, 'sealed', or false for routes that change nothing).
     */
    idempotent?: boolean | 'sealed';
  }
  interface FastifyReply {
    /**
     * The write path: runs `work` in one transaction with the caller's tenant set and sends what it
     * returns with `status`. With `Idempotency-Key` on an idempotent route, the key is claimed and the
     * answer stored in that same transaction, and a repeat is answered from the store without running
     * `work`. A versioned object's answer carries its ETag. Returns the reply (return it from the handler).
     */
    commit<T>(status: number, work: (db: Queryable) => Promise<T>): Promise<FastifyReply>;
  }
}

const claims = new WeakMap<FastifyRequest, { claim: IdempotencyClaim; consumed: boolean }>();

export interface WritesOptions {
  pool: Pool;
  /** Keys the seal of stored answers that show secrets; every API process must share it. */
  sealSecret: string;
}

/** `reply.commit` and the `Idempotency-Key` header (docs/design.md, "REST conventions"). */
export const writesPlugin = fp<WritesOptions>(
  async (app, { pool, sealSecret }) => {
    const store = createIdempotencyStore(sealSecret);

    // The hooks go on the routes declared idempotent only: every other request (every GET) skips them.
    app.addHook('onRoute', (route) => {
      const config = route.config ?? {};
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      if (methods.includes('POST') && !config.public && config.idempotent === undefined) {
        throw new Error(`route POST ${route.url} must declare config.idempotent (true, 'sealed', or false)`);
      }
      const mode = config.idempotent;
      if (!mode) return;
      // After authentication and validation: the key is scoped to the caller and fingerprints the parsed body.
      addRouteHook(route, 'preHandler', async (request: FastifyRequest) => {
        const claim = idempotencyClaim(request.headers[IDEMPOTENCY_HEADER], {
          userId: request.principal.userId, method: request.method, url: request.url, body: request.body,
        }, mode === 'sealed');
        if (claim) claims.set(request, { claim, consumed: false });
      }, 'last');
      addRouteHook(route, 'onSend', async (request: FastifyRequest, reply: FastifyReply) => {
        const pending = claims.get(request);
        if (pending && !pending.consumed && reply.statusCode < 400) {
          request.log.error({ route: route.url }, 'route is declared idempotent but did not answer through reply.commit');
        }
      }, 'last');
    });

    app.decorateReply('commit', async function commit<T>(this: FastifyReply, status: number, work: (db: Queryable) => Promise<T>) {
      const request = this.request;
      const pending = claims.get(request);
      if (pending) pending.consumed = true;
      const claim = pending?.claim ?? null;
      const outcome = await withTenant(pool, request.principal.tenantId, async (db) => {
        if (claim) {
          const first = await store.claim(db, claim);
          if (first) return { replayed: true, status: first.status, payload: first.payload, body: null as T | null };
        }
        const body = await work(db);
        this.code(status);
        const payload = status === 204 ? '' : String(this.serialize(body));
        if (claim) await store.record(db, claim, { status, payload });
        return { replayed: false, status, payload, body };
      });
      this.code(outcome.status);
      if (outcome.replayed) this.header(REPLAYED_HEADER, 'true');
      if (outcome.status === 204) return this.send();
      setEtag(this, outcome.replayed ? JSON.parse(outcome.payload) : outcome.body);
      return this.type('application/json; charset=utf-8').send(outcome.payload);
    });
  },
  { name: 'fieldops-writes', dependencies: ['fieldops-versions'] },
);
