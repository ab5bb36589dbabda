import { Counter, Gauge } from 'prom-client';

/** The realtime role's metrics, registered once per process in the default registry (one /metrics for all roles). */
export interface LiveMetrics {
  sockets: Gauge;
  deliveries: Counter<'kind'>;
  conflated: Counter;
  closedSlow: Counter;
}

let metrics: LiveMetrics | null = null;

export function liveMetrics(): LiveMetrics {
  metrics ??= {
    sockets: new Gauge({ name: 'fieldops_realtime_sockets', help: 'Dispatcher sockets connected to /v1/live' }),
    deliveries: new Counter({
      name: 'fieldops_realtime_deliveries_total',
      help: 'Messages handed to dispatcher sockets (one per socket and message)',
      labelNames: ['kind'],
    }),
    conflated: new Counter({
      name: 'fieldops_realtime_conflated_positions_total',
      help: 'Positions a slow socket never received because a newer one of the same asset replaced them',
    }),
    closedSlow: new Counter({
      name: 'fieldops_realtime_closed_slow_total',
      help: 'Sockets closed (4008) because their buffer passed the hard bound',
    }),
  };
  return metrics;
}
