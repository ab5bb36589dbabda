import type { Config } from './shared/config.js';
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
  webhooks: null, // webhook delivery: a later issue
};

export const availableRoles = (): RoleName[] => ROLE_NAMES.filter((r) => ROLE_MODULES[r] !== null);

export interface Platform {
  runtime: Runtime;
  roles: RunningRole[];
  realtimePort: number | null;
  close(): Promise<void>;
}

/**
 * Starts the given roles in one process (all by default; docs/design.md, "Roles and processes"). Roles share only the
 * runtime's connections; closing stops them in reverse order, then closes the connections.
 */
export async function startPlatform(config: Config, log: Logger, roles: RoleName[] = availableRoles()): Promise<Platform> {
  for (const role of roles) {
    if (!ROLE_MODULES[role]) throw new Error(`role "${role}" is not available in this version`);
  }
  if (config.MIGRATE_ON_START) await migrate(config, log);
  const runtime = new Runtime(config, log);
  const running: RunningRole[] = [];
  const closeAll = async () => {
    for (const role of [...running].reverse()) {
      await role.close().catch((err) => log.error({ err, role: role.name }, 'role did not close cleanly'));
    }
    await runtime.close();
  };
  try {
    for (const role of roles) {
      const module = (await import(ROLE_MODULES[role]!)) as { startRole: RoleStarter };
      running.push(await module.startRole(runtime));
    }
    const realtimePort = await runtime.listenRealtime();
    let closing: Promise<void> | null = null;
    return { runtime, roles: running, realtimePort, close: () => (closing ??= closeAll()) };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
