import client from 'prom-client';
import type { TemplatedApp } from 'uWebSockets.js';

/**
 * `GET /metrics` on the realtime port, so that a realtime-only process can be scraped. Registered as
 * `any`: uWebSockets.js aborts the process on a second `get` of one pattern, and when ingest shares
 * the port its own `get('/metrics')` takes precedence (same default registry, same text).
 */
export function registerMetricsRoute(app: TemplatedApp): void {
  app.any('/metrics', (res, req) => {
    if (req.getMethod() !== 'get') {
      res.writeStatus('405 Method Not Allowed').writeHeader('allow', 'GET').end();
      return;
    }
    let aborted = false;
    res.onAborted(() => (aborted = true));
    void client.register.metrics().then((text) => {
      if (!aborted) res.cork(() => res.writeHeader('content-type', client.register.contentType).end(text));
    });
  });
}
