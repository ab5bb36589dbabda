/**
 * The server under test, in a process of its own: `fieldops start --role ingest` as start.ts runs it, with the
 * configuration from the environment. Tells the parent its ports over IPC; stops gracefully on SIGTERM.
 */
import { loadConfig } from '../../services/shared/config.js';
import { createLogger } from '../../services/shared/log.js';
import { startPlatform } from '../../services/start.js';

const config = loadConfig();
const platform = await startPlatform(config, createLogger(config.LOG_LEVEL, { bench: 'ingest-server' }), ['ingest']);
const mqtt = new URL(platform.roles[0]!.endpoints.mqtt!);
process.send?.({ cmd: 'ready', mqttPort: Number(mqtt.port), realtimePort: platform.realtimePort });
process.once('SIGTERM', () => {
  void platform.close().then(() => process.exit(0));
});
