/**
 * A further ingest process (INGEST_PROCESSES, ingest/processes.ts): an MQTT-only ingest node accepting from the
 * listening socket the first process hands over. It closes when told to, or when the first process is gone.
 */
import type net from 'node:net';
import { createLogger } from '../shared/log.js';
import { Runtime, type RunningRole } from '../shared/runtime.js';
import type { FromIngestProcess, ToIngestProcess } from './processes.js';
import { startIngestNode } from './role.js';

let role: RunningRole | null = null;
let runtime: Runtime | null = null;
let closing: Promise<void> | null = null;

const reply = (msg: FromIngestProcess) => process.send?.(msg);

function close(): Promise<void> {
  closing ??= (async () => {
    await role?.close().catch(() => {});
    await runtime?.close().catch(() => {});
    process.exit(0);
  })();
  return closing;
}

process.on('message', (msg: ToIngestProcess, listener?: net.Server) => {
  if (msg.cmd === 'close') {
    void close();
    return;
  }
  if (msg.cmd !== 'start' || !listener) return;
  const log = createLogger(msg.config.LOG_LEVEL, { ingest_process: msg.index });
  runtime = new Runtime(msg.config, log);
  startIngestNode(runtime, { sharedServer: listener }).then((node) => {
    role = node.role;
    reply({ cmd: 'ready' });
  }, (err: Error) => {
    log.error({ err }, 'ingest process failed to start');
    reply({ cmd: 'failed', message: err.message });
    process.exit(1);
  });
});
process.once('disconnect', () => void close()); // the first process is gone: finish what was acknowledged, then stop
process.once('SIGTERM', () => void close());
