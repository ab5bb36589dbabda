import { WebhookLogPurge } from '../jobs/webhook-log-purge.js';
import type { RoleStarter } from '../shared/runtime.js';
import { DeliveryWorker } from './delivery-worker.js';

/**
 * The `webhooks` role: delivers events to the tenants' endpoints (docs/design.md, "Webhooks"). It reads
 * the `webhook_deliveries` rows that migration 009's trigger routes from the events outbox, so it needs
 * the database only — no stream, no consumer group — and runs the same on the embedded defaults.
 * Several copies share the work through row locks and leases. It also hosts the hourly purge of the
 * delivery log (services/jobs/webhook-log-purge.ts; docs/design.md, "Jobs").
 */
export const startRole: RoleStarter = async (runtime) => {
  const { config } = runtime;
  const log = runtime.log.child({ role: 'webhooks' });
  const pool = runtime.pool('worker');
  const worker = new DeliveryWorker(pool, log, {
    secretKey: config.webhookSecretKey,
    allowHosts: config.WEBHOOK_ALLOW_HOSTS,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    retryDelaysMs: config.webhookRetryDelaysMs,
    endpointConcurrency: config.WEBHOOK_ENDPOINT_CONCURRENCY,
    maxInFlight: config.WEBHOOK_MAX_IN_FLIGHT,
    disableAfterMs: config.WEBHOOK_DISABLE_AFTER_MS,
    pollMs: config.WEBHOOK_POLL_MS,
  });
  const purge = new WebhookLogPurge(pool, log, config.WEBHOOK_LOG_RETENTION_DAYS);
  await worker.start();
  purge.start();
  log.info('webhooks role started');
  return {
    name: 'webhooks',
    endpoints: {},
    close: () => {
      purge.close();
      return worker.close();
    },
  };
};
