/**
 * Hops past the events stream that bench/e2e.ts measures where the platform has them. Each is a plug-in: it says
 * whether this deployment offers it, sets itself up through the API, and hands back a histogram of fix → arrival.
 * The webhook receiver is the first; a further consumer of events (an export, a mail digest) adds one here.
 */
import type { ChildProcess } from 'node:child_process';
import { availableRoles } from '../../services/start.js';
import { stopBenchServer, startBenchServer } from './bench-env.js';
import { Histogram } from './histogram.js';
import type { PlatformShape } from './platform-under-test.js';

export interface EventHop {
  /** The row's name in the e2e table. */
  name: string;
  /** Whether the platform under test has this hop (a target is asked through its API in `setup`). */
  available(shape: PlatformShape): boolean;
  /** Prepares the hop for the tenant; false when the platform turned out not to offer it. */
  setup(apiUrl: string, jwt: string, eventTypes: string[]): Promise<boolean>;
  /** Only arrivals of fixes sent from `ms` on count (the warm-up's are left out). */
  since(ms: number): void;
  /** Arrivals that count, their latency, and every arrival so far (progress, counted or not). */
  collect(): Promise<{ count: number; histogram: Histogram; seen: number }>;
  close(): Promise<void>;
}

/** Geofence events delivered by the webhooks role to a bare HTTP receiver on the loopback. */
export function webhookHop(): EventHop {
  let receiver: ChildProcess | null = null;
  return {
    name: 'fix → webhook receiver',
    available: (shape) => shape === 'target' || availableRoles().includes('webhooks'),
    async setup(apiUrl, jwt, eventTypes) {
      // The bare receiver of bench/webhooks.ts: times each delivery from the envelope's occurred_at, which for a
      // geofence event is the confirming fix's time.
      const started = await startBenchServer<{ port: number }>('lib/webhook-receiver.ts', {});
      receiver = started.child;
      const port = started.ready.port;
      const res = await fetch(`${apiUrl}/v1/webhooks`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
        body: JSON.stringify({ url: `http://127.0.0.1:${port}/hook`, events: eventTypes, enabled: true }),
      });
      await res.arrayBuffer();
      return res.status === 201;
    },
    since(ms) {
      receiver?.send({ cmd: 'reset', since: ms });
    },
    async collect() {
      const stats = await new Promise<{ received: number; ignored: number; latency: number[] }>((resolve) => {
        const onMessage = (m: { cmd: string; received: number; ignored: number; latency: number[] }) => {
          if (m.cmd !== 'stats') return;
          receiver!.off('message', onMessage);
          resolve(m);
        };
        receiver!.on('message', onMessage);
        receiver!.send({ cmd: 'stats' });
      });
      return { count: stats.received, histogram: new Histogram(stats.latency), seen: stats.received + stats.ignored };
    },
    async close() {
      if (receiver) await stopBenchServer(receiver);
    },
  };
}

export const EVENT_HOPS: (() => EventHop)[] = [webhookHop];
