import fp from 'fastify-plugin';
import client from 'prom-client';
import { unauthorized } from '../../shared/contracts/errors.js';
import { metricsAccess } from '../../shared/metrics-access.js';

const DURATION_METRIC = 'http_request_duration_seconds';

/**
 * Process-wide metrics live in prom-client's default registry (one /metrics shows every role of the
 * process), so they are created once per process, however many apps a process builds.
 */
function requestDurationHistogram(): client.Histogram<'route' | 'method' | 'status'> {
  const existing = client.register.getSingleMetric(DURATION_METRIC);
  if (existing) return existing as client.Histogram<'route' | 'method' | 'status'>;
  return new client.Histogram({
    name: DURATION_METRIC,
    help: 'HTTP request duration of the API, by route pattern, method and status',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  });
}

function collectDefaultMetricsOnce(): void {
  if (!client.register.getSingleMetric('process_cpu_user_seconds_total')) client.collectDefaultMetrics();
}

/** `GET /metrics` (Prometheus text format; closed by METRICS_TOKEN when set) and a request-duration histogram. */
export const metricsPlugin = fp<{ metricsToken?: string }>(
  async (app, { metricsToken }) => {
    const allowed = metricsAccess(metricsToken);
    collectDefaultMetricsOnce();
    const duration = requestDurationHistogram();

    // A callback hook: no promise per request for a synchronous observation.
    app.addHook('onResponse', (request, reply, done) => {
      // Unmatched URLs share one label: raw paths would give every scanner its own time series.
      const route = request.routeOptions.url ?? 'unmatched';
      duration.observe({ route, method: request.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
      done();
    });

    app.get('/metrics', { config: { rateLimit: false }, schema: { hide: true } }, async (request, reply) => {
      if (!allowed(request.headers.authorization)) throw unauthorized('/metrics needs the metrics token (Authorization: Bearer …)');
      reply.type(client.register.contentType);
      return client.register.metrics();
    });
  },
  { name: 'fieldops-metrics' },
);
