import { Counter, Gauge, Histogram } from 'prom-client';

/**
 * The webhooks role's metrics, registered once per process in the default registry (one /metrics for all
 * roles). No endpoint or tenant label: their number is unbounded; the delivery log has the detail.
 */
export interface WebhookMetrics {
  attempts: Counter<'outcome'>;
  attemptSeconds: Histogram;
  inFlight: Gauge;
}

let metrics: WebhookMetrics | null = null;

export function webhookMetrics(): WebhookMetrics {
  metrics ??= {
    attempts: new Counter({
      name: 'fieldops_webhook_attempts_total',
      help: 'Delivery attempts by what they led to: delivered, retry (scheduled again) or failed (given up)',
      labelNames: ['outcome'],
    }),
    attemptSeconds: new Histogram({
      name: 'fieldops_webhook_attempt_seconds',
      help: 'Time from sending a delivery to its answer (or error)',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    }),
    inFlight: new Gauge({ name: 'fieldops_webhook_attempts_in_flight', help: 'Attempts sent and not yet answered' }),
  };
  return metrics;
}
