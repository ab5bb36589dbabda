/**
 * bench/fanout.ts's server under test: the realtime role alone, in its own process, as `fieldops start --role realtime`.
 * With the in-process bus (`fanout --embedded`) nothing outside this process can append to its streams, so it
 * also runs the position publisher itself when told to (`publish` / `unpublish`), as ingest would beside it.
 */
import { loadConfig } from '../../services/shared/config.js';
import { createLogger } from '../../services/shared/log.js';
import { startPlatform } from '../../services/start.js';
import { PositionPublisher } from './position-publisher.js';

type Command = { cmd: 'stop' } | { cmd: 'publish'; tenantId: string; perSecond: number } | { cmd: 'unpublish' };

const config = loadConfig();
const platform = await startPlatform(config, createLogger(config.LOG_LEVEL), ['realtime']);
let publisher: PositionPublisher | null = null;
process.send!({ port: platform.realtimePort });
process.on('message', (message: Command) => {
  if (message.cmd === 'stop') {
    publisher?.stop();
    void platform.close().then(() => process.exit(0));
  } else if (message.cmd === 'publish') {
    publisher ??= new PositionPublisher(platform.runtime.bus(), platform.runtime.streams, message.tenantId);
    publisher.start(message.perSecond);
    process.send!({ publishing: true });
  } else if (message.cmd === 'unpublish') {
    publisher?.stop();
    process.send!({ unpublished: true });
  }
});
