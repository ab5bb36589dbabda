/**
 * A server under test, in a process of its own: `fieldops start --role …` as start.ts runs it, for the roles in
 * BENCH_ROLES (comma-separated; every role when unset), with the configuration from the environment. Tells the
 * parent where it listens over IPC; stops gracefully on SIGTERM.
 */
import { loadConfig } from '../../services/shared/config.js';
import { createLogger } from '../../services/shared/log.js';
import { availableRoles, startPlatform, type RoleName } from '../../services/start.js';

/** What the parent learns: the ports and URL of whichever of these roles run here. */
export interface PlatformReady {
  cmd: 'ready';
  mqttPort?: number;
  realtimePort?: number;
  api?: string;
}

const roles = (process.env.BENCH_ROLES ? process.env.BENCH_ROLES.split(',') : availableRoles()) as RoleName[];
const config = loadConfig();
const platform = await startPlatform(config, createLogger(config.LOG_LEVEL, { bench: roles.join('+') }), roles);
const endpoints = Object.assign({}, ...platform.roles.map((r) => ({ ...r.endpoints }))) as Record<string, string>;
const ready: PlatformReady = {
  cmd: 'ready',
  ...(endpoints.mqtt ? { mqttPort: Number(new URL(endpoints.mqtt).port) } : {}),
  ...(platform.realtimePort ? { realtimePort: platform.realtimePort } : {}),
  ...(endpoints.api ? { api: endpoints.api } : {}),
};
process.send?.(ready);
process.once('SIGTERM', () => {
  void platform.close().then(() => process.exit(0));
});
