import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/log.js';

/** Messages between the first ingest process and the further ones it starts (services/ingest/mqtt-process.ts). */
export type ToIngestProcess = { cmd: 'start'; config: Config; index: number } | { cmd: 'close' };
export type FromIngestProcess = { cmd: 'ready' } | { cmd: 'failed'; message: string };

export interface IngestProcesses {
  readonly pids: number[];
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;
// Above the batcher flush (10 s) plus the publisher close (15 s) of services/ingest/role.ts.
const CLOSE_TIMEOUT_MS = 30_000;

/**
 * INGEST_PROCESSES on one machine: the "ingest nodes behind a TCP load balancer" of docs/design.md, "Roles and processes", with the kernel
 * as the balancer. The first process's MQTT listening socket is handed to `count` further processes
 * (child_process `send` with a server handle, as Node documents it); every process accepts from the same socket,
 * and each is a whole ingest node — its own broker, batcher, id blocks, stream publisher and device-change LISTEN —
 * so nothing is shared in memory, as between machines. A device's connection lives in one process, so its
 * messages keep their order. Node 20's `net` has no SO_REUSEPORT, hence the handle passing rather than several
 * listens; node:cluster is not used because the first process also runs the realtime port and other roles.
 */
export async function startIngestProcesses(config: Config, listener: net.Server, count: number, log: Logger): Promise<IngestProcesses> {
  const children: ChildProcess[] = [];
  const close = async () => {
    await Promise.all(children.map((child) => stopChild(child)));
  };
  try {
    for (let index = 1; index <= count; index++) {
      const [script, execArgv] = entry();
      const child = fork(script, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      child.on('exit', (code, signal) => {
        if (code !== 0) log.error({ code, signal, index }, 'an ingest process exited; its devices reconnect to the others');
      });
      await started(child, { cmd: 'start', config, index }, listener);
    }
  } catch (err) {
    await close();
    throw err;
  }
  log.info({ processes: count + 1 }, 'ingest: MQTT connections shared between processes');
  return { pids: children.map((c) => c.pid!), close };
}

/** The child's script: TypeScript under tsx (tests, benches), JavaScript once built. */
function entry(): [script: string, execArgv: string[]] {
  const ts = fileURLToPath(new URL('./mqtt-process.ts', import.meta.url));
  if (existsSync(ts) && import.meta.url.endsWith('.ts')) return [ts, ['--import', 'tsx']];
  return [fileURLToPath(new URL('./mqtt-process.js', import.meta.url)), process.execArgv];
}

function started(child: ChildProcess, start: ToIngestProcess, listener: net.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    const timeout = setTimeout(() => done(new Error('an ingest process did not start in time')), START_TIMEOUT_MS);
    const onMessage = (msg: FromIngestProcess) => done(msg.cmd === 'ready' ? undefined : new Error(`an ingest process failed to start: ${msg.message}`));
    const onExit = (code: number | null) => done(new Error(`an ingest process exited while starting (${code})`));
    function done(err?: Error) {
      clearTimeout(timeout);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send(start, listener);
  });
}

/** Asks a process to flush and close (what it acknowledged is committed first); kills it only past the timeout. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.send({ cmd: 'close' } satisfies ToIngestProcess);
  else child.kill('SIGTERM');
  const timeout = setTimeout(() => child.kill('SIGKILL'), CLOSE_TIMEOUT_MS);
  await exited;
  clearTimeout(timeout);
}
