/**
 * The webhooks role under test, in a process of its own: `fieldops start --role webhooks` as start.ts
 * runs it, configured from the environment. Tells the parent it is ready; stops gracefully on SIGTERM.
 */
import { loadConfig } from '../../services/shared/config.js';
import { createLogger } from '../../services/shared/log.js';
import { startPlatform } from '../../services/start.js';

const config = loadConfig();
const platform = await startPlatform(config, createLogger(config.LOG_LEVEL, { bench: 'webhooks-role' }), ['webhooks']);
process.send?.({ cmd: 'ready' });
process.once('SIGTERM', () => {
  void platform.close().then(() => process.exit(0));
});
