import type { RoleStarter } from '../shared/runtime.js';
import { DeliveryWorker } from './delivery-worker.js';

/**
 * The `webhooks` role: delivers events to the tenants' endpoints (docs/design.md, "Webhooks"). It reads
 * the `webhook_deliveries` rows that migration 009's trigger routes from the events outbox, so it needs
 * the database only — no stream, no consumer group — and runs the same on the embedded defaults.
 * Several copies share the work through row locks and leases.
 */
export const startRole: RoleStarter = async (runtime) => {
  const { config } = runtime;
  const log = runtime.log.child({ role: 'webhooks' });
  const worker = new DeliveryWorker(runtime.pool('worker'), log, {
    secretKey: config.webhookSecretKey,
    allowHosts: config.WEBHOOK_ALLOW_HOSTS,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    retryDelaysMs: config.webhookRetryDelaysMs,
    endpointConcurrency: config.WEBHOOK_ENDPOINT_CONCURRENCY,
    maxInFlight: config.WEBHOOK_MAX_IN_FLIGHT,
    disableAfterMs: config.WEBHOOK_DISABLE_AFTER_MS,
    pollMs: config.WEBHOOK_POLL_MS,
  });
  await worker.start();
  log.info('webhooks role started');
  return { name: 'webhooks', endpoints: {}, close: () => worker.close() };
};
