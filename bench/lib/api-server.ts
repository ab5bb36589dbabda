/**
 * The API under test, in a process of its own: `fieldops start --role api` as start.ts runs it, with the
 * configuration from the environment. Tells the parent its base URL over IPC; stops gracefully on SIGTERM.
 */
import { loadConfig } from '../../services/shared/config.js';
import { createLogger } from '../../services/shared/log.js';
import { startPlatform } from '../../services/start.js';

const config = loadConfig();
const platform = await startPlatform(config, createLogger(config.LOG_LEVEL, { bench: 'api-server' }), ['api']);
process.send?.({ cmd: 'ready', api: platform.roles[0]!.endpoints.api });
process.once('SIGTERM', () => {
  void platform.close().then(() => process.exit(0));
});
