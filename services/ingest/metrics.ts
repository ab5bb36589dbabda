import client from 'prom-client';
import type { Logger } from '../shared/log.js';
import type { RejectReason } from '../../ingest/decode.js';
import type { RejectionSink, Transport } from '../../ingest/intake.js';
import type { DeviceRef } from '../../ingest/rows.js';
import type { DeviceRejectionWriter } from './device-rejections.js';

/** What a running ingest role reports at scrape time (several may run in one test process). */
export interface IngestGaugeSource {
  heldRows(): number;
  connections(transport: Transport): number;
  streamDegraded(): boolean;
}

export interface IngestMetrics {
  rejected: client.Counter<'reason'>;
  messages: Record<Transport, number>;
  rowsCommitted: client.Counter;
  duplicates: client.Counter;
  commitSeconds: client.Histogram;
  commitRetries: client.Counter;
  pauses: client.Counter<'transport'>;
  streamGaps: client.Counter<'stream'>;
  streamReplayed: client.Counter<'stream'>;
  credentialQueries: client.Counter;
  sources: Set<IngestGaugeSource>;
}

let metrics: IngestMetrics | null = null;

/** The ingest role's metrics, registered once per process in prom-client's default registry. */
export function ingestMetrics(): IngestMetrics {
  if (metrics) return metrics;
  if (!client.register.getSingleMetric('process_cpu_user_seconds_total')) client.collectDefaultMetrics();
  const sources = new Set<IngestGaugeSource>();
  // Message counts are summed in plain numbers on the hot path and read into the counter at scrape time.
  const messages: Record<Transport, number> = { mqtt: 0, ws: 0, http: 0 };
  new client.Counter({
    name: 'fieldops_ingest_messages_total',
    help: 'Messages received from devices, by transport (accepted or not)',
    labelNames: ['transport'],
    collect() {
      this.reset();
      for (const [transport, n] of Object.entries(messages)) this.inc({ transport }, n);
    },
  });
  new client.Gauge({
    name: 'fieldops_ingest_held_rows',
    help: 'Rows received and not yet committed; past INGEST_MAX_PENDING_ROWS ingest stops reading sockets',
    collect() {
      let n = 0;
      for (const s of sources) n += s.heldRows();
      this.set(n);
    },
  });
  new client.Gauge({
    name: 'fieldops_ingest_connections',
    help: 'Device connections open, by transport',
    labelNames: ['transport'],
    collect() {
      for (const transport of ['mqtt', 'ws'] as const) {
        let n = 0;
        for (const s of sources) n += s.connections(transport);
        this.set({ transport }, n);
      }
    },
  });
  new client.Gauge({
    name: 'fieldops_ingest_stream_degraded',
    help: '1 while committed rows are recorded as stream gaps (Redis unreachable) instead of appended',
    collect() {
      this.set([...sources].some((s) => s.streamDegraded()) ? 1 : 0);
    },
  });
  metrics = {
    sources,
    messages,
    rejected: new client.Counter({
      name: 'fieldops_ingest_rejected_total',
      // By reason only: a device label would publish every tenant's device ids and grow without bound. The
      // counts per device are in device_rejections, shown on the device through the API.
      help: 'Messages or fixes refused, by reason (the device stays connected, except for packet_too_large)',
      labelNames: ['reason'],
    }),
    rowsCommitted: new client.Counter({ name: 'fieldops_ingest_rows_committed_total', help: 'Positions and punches committed (duplicates included)' }),
    duplicates: new client.Counter({ name: 'fieldops_ingest_duplicates_total', help: 'Rows already stored (same device and ts), acknowledged and not stored again' }),
    commitSeconds: new client.Histogram({
      name: 'fieldops_ingest_commit_seconds',
      help: 'Time to commit one batch, retries included',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5],
    }),
    commitRetries: new client.Counter({ name: 'fieldops_ingest_commit_retries_total', help: 'Batch commits retried after a database error' }),
    pauses: new client.Counter({
      name: 'fieldops_ingest_backpressure_total',
      help: 'Times ingest stopped reading from sockets because too many rows waited for the database',
      labelNames: ['transport'],
    }),
    streamGaps: new client.Counter({
      name: 'fieldops_ingest_stream_gaps_total',
      help: 'Committed id ranges recorded in stream_gaps because the stream append failed',
      labelNames: ['stream'],
    }),
    credentialQueries: new client.Counter({
      name: 'fieldops_ingest_credential_queries_total',
      help: 'Database look-ups of device tokens (each serves every login that arrived meanwhile; refusals are cached briefly)',
    }),
    streamReplayed: new client.Counter({
      name: 'fieldops_ingest_stream_replayed_total',
      help: 'Rows appended to the streams from the database by the gap catch-up',
      labelNames: ['stream'],
    }),
  };
  return metrics;
}

const LOG_EVERY_MS = 60_000;
const MAX_REMEMBERED = 10_000;

/** Counts refusals by reason (metrics) and per device (device_rejections); logs each (device, reason) at most once a minute. */
export class RejectionReporter implements RejectionSink {
  private readonly lastLogged = new Map<string, number>();

  constructor(private readonly log: Logger, private readonly metrics: IngestMetrics, private readonly perDevice: DeviceRejectionWriter) {}

  reject(device: DeviceRef | null, reason: RejectReason, count = 1, detail?: Record<string, unknown>): void {
    this.metrics.rejected.inc({ reason }, count);
    if (device) this.perDevice.add(device, reason, count);
    const key = `${device?.id}|${reason}`;
    const now = Date.now();
    const last = this.lastLogged.get(key);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    if (this.lastLogged.size >= MAX_REMEMBERED) this.lastLogged.clear();
    this.lastLogged.set(key, now);
    this.log.warn({ device_id: device?.id, reason, count, ...detail }, 'ingest refused input (logged once a minute per device and reason)');
  }
}
