import fp from 'fastify-plugin';

/**
 * Graceful shutdown waits for every route handler still running (docs/design.md, "Graceful shutdown").
 * Fastify's close waits for open connections only: a handler whose client went away (a load test
 * stopping, a phone losing signal) keeps running — writing a file, then committing — after close has
 * resolved, and the role's pool, closed next, fails it half done. Handlers are counted from entry to
 * settlement, and `close()` resolves once none is left. Registered first, so every route is wrapped.
 */
export const inFlightPlugin = fp(
  async (app) => {
    let running = 0;
    let drained: (() => void) | null = null;
    const settled = () => {
      running--;
      if (running === 0) drained?.();
    };

    app.addHook('onRoute', (route) => {
      const handler = route.handler;
      route.handler = function counted(this: typeof app, request, reply) {
        running++;
        let result: unknown;
        try {
          result = handler.call(this, request, reply);
        } catch (err) {
          settled();
          throw err;
        }
        if (result instanceof Promise) result.then(settled, settled);
        else settled();
        return result;
      } as typeof handler;
    });

    app.addHook('onClose', async () => {
      if (running > 0) await new Promise<void>((resolve) => { drained = resolve; });
    });
  },
  { name: 'fieldops-in-flight' },
);
