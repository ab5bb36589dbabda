import { randomInt } from 'node:crypto';
import type net from 'node:net';
import type { Logger } from '../shared/log.js';
import type { RoleStarter, Runtime, RunningRole } from '../shared/runtime.js';
import { Batcher } from '../../ingest/batcher.js';
import { maxBatchBytes, TIME_WINDOW } from '../../ingest/decode.js';
import { DeviceDirectory } from './device-auth.js';
import { DeviceRejectionWriter } from './device-rejections.js';
import { DeviceStateWriter } from './device-state.js';
import { HttpIngest } from '../../ingest/http-ingest.js';
import { IngestIntake } from '../../ingest/intake.js';
import { ingestMetrics, RejectionReporter, type IngestGaugeSource } from './metrics.js';
import { MqttIngest } from '../../ingest/mqtt-broker.js';
import { MAX_CONNECT_BYTES } from '../../ingest/mqtt-packet-limits.js';
import { startIngestProcesses, type IngestProcesses } from './processes.js';
import { StreamPublisher } from './stream-publisher.js';
import { existingPositionIds, existingPunchIds, IdBlocks, insertPositions, insertPunches } from './telemetry-writer.js';
import { WsIngest } from '../../ingest/ws-ingest.js';

/**
 * Batches committing at once, each on its own connection: one fills while the other commits. Measured
 * (bench/ingest.ts, single-fix, paired runs): 2 → 56–57k msgs/s, 3 → 51k (more, smaller commits for the same
 * 2 cores that PostgreSQL shares with the broker).
 */
const COMMITS_IN_FLIGHT = 2;
const CLOSE_FLUSH_TIMEOUT_MS = 10_000;
// Longer than the publisher's 5 s append timeout, so that with Redis hung at shutdown the timed-out rows are
// still recorded in stream_gaps (and replayed later) before the pools close.
const PUBLISHER_CLOSE_TIMEOUT_MS = 15_000;

/**
 * The ingest role: MQTT (aedes on MQTT_PORT), WebSocket `/v1/ingest` and `POST /v1/ingest/gps` on the shared
 * realtime port, all through one intake and one batcher into PostgreSQL; committed rows then go to the Redis
 * streams and to device_state. With INGEST_PROCESSES > 1 the MQTT listening socket is shared with that many
 * processes in all (services/ingest/processes.ts), each a whole ingest node of its own.
 */
export const startRole: RoleStarter = async (runtime) => {
  const node = await startIngestNode(runtime, {});
  if (runtime.config.INGEST_PROCESSES <= 1) return node.role;
  if (!runtime.database.shared || runtime.backplane.kind !== 'redis') {
    // Further processes would reach neither the in-process bus nor (through advisory locks) each other.
    node.log.warn({ INGEST_PROCESSES: runtime.config.INGEST_PROCESSES }, 'INGEST_PROCESSES needs DATABASE_URL and REDIS_URL; ingest runs in this process only');
    return node.role;
  }
  let helpers: IngestProcesses;
  try {
    helpers = await startIngestProcesses(runtime.config, node.listener, runtime.config.INGEST_PROCESSES - 1, node.log);
  } catch (err) {
    await node.role.close();
    throw err;
  }
  let closing: Promise<void> | null = null;
  return {
    name: node.role.name,
    get endpoints() {
      return node.role.endpoints;
    },
    close: () => (closing ??= Promise.all([helpers.close(), node.role.close()]).then(() => {})),
  };
};

export interface IngestNodeOptions {
  /** Accept MQTT connections from this listening socket (shared by another process) and serve MQTT only. */
  sharedServer?: net.Server;
}

export interface IngestNode {
  role: RunningRole;
  listener: net.Server;
  log: Logger;
}

export async function startIngestNode(runtime: Runtime, options: IngestNodeOptions): Promise<IngestNode> {
  const { config } = runtime;
  const log = runtime.log.child({ role: 'ingest' });
  const pool = runtime.pool('ingest');
  const positionIds = new IdBlocks();
  const metrics = ingestMetrics();
  // Names this run's provisional stream gaps (GapMarker): random, as processes of a node share nothing.
  const runId = randomInt(2 ** 47);

  const directory = new DeviceDirectory(pool, () => runtime.database.serviceClient('ingest', 'fieldops-ingest-listen'), log, {
    maxFailuresPerMinute: config.INGEST_AUTH_FAILURES_PER_MIN,
    onLookupQuery: () => metrics.credentialQueries.inc(),
  });
  await directory.start();
  const publisher = new StreamPublisher({
    bus: runtime.bus(), runId, pool, streams: runtime.streams, maxLen: config.STREAM_MAXLEN, positionMaxLen: config.POSITION_STREAM_MAXLEN, log, metrics,
    maxQueuedRows: Math.max(config.INGEST_MAX_PENDING_ROWS, 10_000),
  });
  await publisher.start();
  const deviceState = new DeviceStateWriter(pool, log);
  deviceState.start();
  const rejections = new DeviceRejectionWriter(pool, log);
  rejections.start();

  let mqtt: MqttIngest | null = null;
  const batcher = new Batcher({
    maxRows: config.INGEST_BATCH_MAX_ROWS,
    maxMs: config.INGEST_BATCH_MAX_MS,
    maxInFlight: COMMITS_IN_FLIGHT,
    maxPendingRows: config.INGEST_MAX_PENDING_ROWS,
    store: {
      insertPositions: (rows, cutKey) => insertPositions(pool, positionIds, rows, { runId, cutKey }, runtime.database.supportsCopy),
      insertPunches: (rows, cutKey) => insertPunches(pool, rows, { runId, cutKey }),
      existingPositionIds: (d, t) => existingPositionIds(pool, d, t),
      existingPunchIds: (d, t) => existingPunchIds(pool, d, t),
    },
    onCommitted: (batch) => {
      metrics.rowsCommitted.inc(batch.positions.length + batch.punches.length);
      publisher.publish(batch);
      deviceState.record(batch);
    },
    onPressure: (on) => {
      if (on) log.warn('ingest backlog at its bound: no longer reading from device sockets until it drains');
      mqtt?.setPaused(on);
    },
    log,
    metrics: {
      observeCommit: (seconds, _rows, duplicates) => {
        metrics.commitSeconds.observe(seconds);
        if (duplicates) metrics.duplicates.inc(duplicates);
      },
      commitRetry: () => metrics.commitRetries.inc(),
    },
  });

  const reporter = new RejectionReporter(log, metrics, rejections);
  const intake = new IngestIntake(batcher, reporter, metrics, {
    maxBatchFixes: config.INGEST_MAX_BATCH_FIXES,
    ...TIME_WINDOW,
  });
  mqtt = new MqttIngest({
    host: config.HOST, port: config.MQTT_PORT, directory, batcher, intake, log,
    limits: { maxPacketBytes: config.MQTT_MAX_PACKET_BYTES, maxConnectBytes: MAX_CONNECT_BYTES },
    connectTimeoutMs: config.MQTT_CONNECT_TIMEOUT_MS,
    onPause: () => metrics.pauses.inc({ transport: 'mqtt' }),
    onTooLarge: (device) => reporter.reject(device, 'packet_too_large', 1, { transport: 'mqtt' }),
    sharedServer: options.sharedServer,
  });
  const mqttPort = await mqtt.start();
  if (options.sharedServer) return { role: mqttOnlyRole(mqtt, batcher, publisher, [deviceState, rejections], directory, log), listener: mqtt.listener, log };
  const server = runtime.realtimeServer();
  const app = server.app;
  server.serveMetrics();
  // The batch limit is in fixes whatever the encoding: bodies and frames may be as large as the JSON that holds them.
  const maxBodyBytes = maxBatchBytes(config.INGEST_MAX_BATCH_FIXES, 'json');
  const ws = new WsIngest({ app, upgradeLater: (res, upgrade) => server.upgradeLater(res, upgrade), directory, batcher, intake, maxPayloadBytes: maxBodyBytes, log });
  ws.register();
  const http = new HttpIngest({ app, directory, batcher, intake, maxBodyBytes });
  http.register();

  const gauges: IngestGaugeSource = {
    heldRows: () => batcher.heldRows,
    connections: (transport) => (transport === 'mqtt' ? mqtt!.connectionCount : transport === 'ws' ? ws.connectionCount : 0),
    streamDegraded: () => publisher.isDegraded,
  };
  metrics.sources.add(gauges);

  const displayHost = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
  log.info({ mqtt_port: mqttPort }, 'ingest: MQTT broker listening');

  let closing: Promise<void> | null = null;
  const role: RunningRole = {
    name: 'ingest',
    // The realtime port is chosen when start.ts opens it, after every role has registered: read it late.
    get endpoints() {
      const realtimePort = runtime.realtimeServer().port || config.REALTIME_PORT;
      return { mqtt: `mqtt://${displayHost}:${mqttPort}`, ingest_ws: `ws://${displayHost}:${realtimePort}/v1/ingest` };
    },
    close: () => (closing ??= (async () => {
      mqtt!.stopIntake();
      ws.stopIntake();
      http.stopIntake();
      const flushed = await batcher.close(CLOSE_FLUSH_TIMEOUT_MS);
      if (!flushed) log.warn('ingest closed with uncommitted messages; devices resend the unacknowledged ones');
      await publisher.close(PUBLISHER_CLOSE_TIMEOUT_MS);
      await deviceState.close().catch(() => {});
      await rejections.close().catch(() => {});
      await mqtt!.close();
      ws.close();
      await directory.close();
      metrics.sources.delete(gauges);
    })()),
  };
  return { role, listener: mqtt.listener, log };
}

/** A further ingest process: MQTT only (the realtime port, WebSocket/HTTP ingest and /metrics stay with the first). */
function mqttOnlyRole(mqtt: MqttIngest, batcher: Batcher, publisher: StreamPublisher, writers: { close(): Promise<void> }[],
  directory: DeviceDirectory, log: Logger): RunningRole {
  let closing: Promise<void> | null = null;
  return {
    name: 'ingest',
    endpoints: {},
    close: () => (closing ??= (async () => {
      mqtt.stopIntake();
      const flushed = await batcher.close(CLOSE_FLUSH_TIMEOUT_MS);
      if (!flushed) log.warn('ingest closed with uncommitted messages; devices resend the unacknowledged ones');
      await publisher.close(PUBLISHER_CLOSE_TIMEOUT_MS);
      for (const writer of writers) await writer.close().catch(() => {});
      await mqtt.close();
      await directory.close();
    })()),
  };
}
