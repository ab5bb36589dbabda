import { startDemo, type RunningDemo } from './demo/demo.js';
import { createBackplane } from './shared/backplane.js';
import type { Config } from './shared/config.js';
import { openDatabase } from './shared/database.js';
import type { Logger } from './shared/log.js';
import { migrate } from './shared/migrate.js';
import { Runtime, type RoleStarter, type RunningRole } from './shared/runtime.js';

export const ROLE_NAMES = ['api', 'ingest', 'geofence', 'realtime', 'webhooks'] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

/** Each role lives in `services/<role>/role.ts` (ingest's transports in `ingest/`) and exports `startRole`. */
const ROLE_MODULES: Record<RoleName, string | null> = {
  api: './api/role.js',
  ingest: './ingest/role.js',
  geofence: './geofence/role.js',
  realtime: './realtime/role.js',
  webhooks: './webhooks/role.js',
};

export const availableRoles = (): RoleName[] => ROLE_NAMES.filter((r) => ROLE_MODULES[r] !== null);

export interface Platform {
  runtime: Runtime;
  roles: RunningRole[];
  realtimePort: number | null;
  /** The demo fleet, when this start drives one (every role here, FIELDOPS_DEMO on, a demo organization). */
  demo: RunningDemo | null;
  close(): Promise<void>;
}

/**
 * Starts the given roles in one process (all by default; docs/design.md, "Roles and processes"), on the database and the
 * backplane the configuration names — or, without DATABASE_URL and REDIS_URL, on the embedded
 * PostgreSQL and the in-process bus (docs/design.md, "Two commands: embedded PostgreSQL and the in-process bus"). Roles share only the runtime's connections;
 * closing stops the demo, then the roles in reverse order, then the connections and the database.
 */
export async function startPlatform(config: Config, log: Logger, roles: RoleName[] = availableRoles()): Promise<Platform> {
  for (const role of roles) {
    if (!ROLE_MODULES[role]) throw new Error(`role "${role}" is not available in this version`);
  }
  const database = await openDatabase(config, log);
  const backplane = createBackplane(config);
  const allRoles = availableRoles().every((r) => roles.includes(r));
  if ((database.kind === 'embedded' || backplane.kind === 'in-process') && !allRoles) {
    log.warn({ roles }, 'the embedded database and the in-process bus serve this process only: roles running elsewhere cannot join it');
  }
  try {
    if (config.MIGRATE_ON_START) await migrate(config, log, database);
  } catch (err) {
    await database.close();
    throw err;
  }
  const runtime = new Runtime(config, log, { database, backplane, ownsDatabase: true });
  const running: RunningRole[] = [];
  let demo: RunningDemo | null = null;
  const closeAll = async () => {
    await demo?.close().catch((err: unknown) => log.error({ err }, 'demo fleet did not stop cleanly'));
    for (const role of [...running].reverse()) {
      await role.close().catch((err: unknown) => log.error({ err, role: role.name }, 'role did not close cleanly'));
    }
    await runtime.close();
  };
  try {
    for (const role of roles) {
      const module = (await import(ROLE_MODULES[role]!)) as { startRole: RoleStarter };
      running.push(await module.startRole(runtime));
    }
    const realtimePort = await runtime.listenRealtime();
    if (config.demo && allRoles) demo = await startDemoSafely(runtime, running, log);
    let closing: Promise<void> | null = null;
    return { runtime, roles: running, realtimePort, demo, close: () => (closing ??= closeAll()) };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** The demo is a convenience: when it cannot start, the platform runs without it. */
async function startDemoSafely(runtime: Runtime, roles: RunningRole[], log: Logger): Promise<RunningDemo | null> {
  const mqtt = roles.find((r) => r.name === 'ingest')?.endpoints.mqtt;
  if (!mqtt) return null;
  try {
    return await startDemo({
      database: runtime.database,
      workerPool: runtime.pool('worker'),
      dataDir: runtime.config.DATA_DIR,
      // The broker is in this process: reach it on the loopback address it listens on.
      mqttUrl: runtime.config.HOST === '::' ? mqtt.replace('localhost', '[::1]') : mqtt.replace('localhost', '127.0.0.1'),
      log: log.child({ role: 'demo' }),
    });
  } catch (err) {
    log.error({ err }, 'the demo organization could not be set up; running without it');
    return null;
  }
}
