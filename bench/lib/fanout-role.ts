/**
 * bench/fanout.ts's server under test: the realtime role alone, in its own process, as `fieldops start --role realtime`.
 * With the in-process bus (`fanout --embedded`) nothing outside this process can append to its streams, so it
 * also runs the position publisher itself when told to (`publish` / `unpublish`), as ingest would beside it.
 */
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../services/shared/config.js';
import { createLogger } from '../../services/shared/log.js';
import { startPlatform } from '../../services/start.js';
import { createTenant } from '../../services/shared/tenants.js';
import { inTransaction, setTenant } from '../../services/shared/db.js';
import { PositionPublisher } from './position-publisher.js';

type Command = { cmd: 'stop' } | { cmd: 'publish'; tenantId: string; perSecond: number | null } | { cmd: 'limit'; limit: number } | { cmd: 'unpublish' };

const config = loadConfig();
const platform = await startPlatform(config, createLogger(config.LOG_LEVEL), ['realtime']);
let publisher: PositionPublisher | null = null;
// A tenant and a user of its own: live sockets are opened with a session, and a session is accepted only
// while its user exists (docs/design.md, "Reliability and security").
const owner = platform.runtime.database.ownerClient();
await owner.connect();
const org = await createTenant(owner, {
  name: `bench fanout ${randomUUID()}`, plan: 'unlimited', addons: [], adminEmail: `bench-${randomUUID()}@example.com`, adminPassword: randomUUID(),
});
const { rows } = await inTransaction(owner, async () => (await setTenant(owner, org.id), owner.query<{ id: string }>('select id from users')));
const dropTenant = () => inTransaction(owner, async () => {
  await setTenant(owner, org.id);
  await owner.query('delete from organizations where id = $1', [org.id]);
}).finally(() => owner.end());
process.send!({ ready: { port: platform.realtimePort, tenantId: org.id, userId: rows[0]!.id } });
process.on('message', (message: Command) => {
  if (message.cmd === 'stop') {
    publisher?.stop();
    void dropTenant().catch(() => {}).then(() => platform.close()).then(() => process.exit(0));
  } else if (message.cmd === 'publish') {
    publisher ??= new PositionPublisher(platform.runtime.bus(), platform.runtime.streams, message.tenantId);
    publisher.start(message.perSecond);
    process.send!({ publishing: true });
  } else if (message.cmd === 'limit') {
    if (publisher) publisher.limit = message.limit;
  } else if (message.cmd === 'unpublish') {
    publisher?.stop();
    process.send!({ unpublished: true });
  }
});
