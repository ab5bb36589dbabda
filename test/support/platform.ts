import net from 'node:net';
import type { Config } from '../../services/shared/config.js';
import { createLogger } from '../../services/shared/log.js';
import { startPlatform, type Platform, type RoleName } from '../../services/start.js';

/**
 * Roles (all by default) as `fieldops start` runs them, on a test database's config (free ports, its own
 * Redis prefix): the same code path as production. Close the platform before dropping the database.
 */
export function startRoles(config: Config, roles?: RoleName[]): Promise<Platform> {
  return startPlatform(config, createLogger(config.LOG_LEVEL), roles);
}

/** A port free right now on 127.0.0.1, for a listener that must keep one port across restarts (else pass 0). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
