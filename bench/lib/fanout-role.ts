/** bench/fanout.ts's server under test: the realtime role alone, in its own process, as `fieldops start --role realtime`. */
import { loadConfig } from '../../services/shared/config.js';
import { createLogger } from '../../services/shared/log.js';
import { startPlatform } from '../../services/start.js';

const config = loadConfig();
const platform = await startPlatform(config, createLogger(config.LOG_LEVEL), ['realtime']);
process.send!({ port: platform.realtimePort });
process.on('message', (message: { cmd: string }) => {
  if (message.cmd === 'stop') void platform.close().then(() => process.exit(0));
});
