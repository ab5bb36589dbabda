import client from 'prom-client';

export interface GeofenceMetrics {
  fixes: client.Counter;
  outOfOrder: client.Counter;
  events: client.Counter<'source'>;
  batchSeconds: client.Histogram;
  punches: client.Counter<'verified'>;
  /** Workers of this process, read at scrape time (tests run several in one process). */
  heldShards: Set<() => number>;
}

let metrics: GeofenceMetrics | null = null;

/** The geofence role's metrics, registered once per process in prom-client's default registry. */
export function geofenceMetrics(): GeofenceMetrics {
  if (metrics) return metrics;
  const heldShards = new Set<() => number>();
  new client.Gauge({
    name: 'fieldops_geofence_held_shards',
    help: 'positions:{n} shards whose lease this process holds',
    collect() {
      let n = 0;
      for (const held of heldShards) n += held();
      this.set(n);
    },
  });
  metrics = {
    fixes: new client.Counter({ name: 'fieldops_geofence_fixes_total', help: 'Fixes evaluated against geofences' }),
    outOfOrder: new client.Counter({ name: 'fieldops_geofence_out_of_order_total', help: 'Fixes ignored as older than the last evaluated one of their asset' }),
    events: new client.Counter({ name: 'fieldops_geofence_events_total', help: 'Events written to the outbox (new rows)', labelNames: ['source'] }),
    batchSeconds: new client.Histogram({
      name: 'fieldops_geofence_batch_seconds',
      help: 'One read batch: evaluate, write events, save states, acknowledge',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    }),
    punches: new client.Counter({ name: 'fieldops_geofence_punches_total', help: 'Punches verified, by outcome', labelNames: ['verified'] }),
    heldShards,
  };
  return metrics;
}
