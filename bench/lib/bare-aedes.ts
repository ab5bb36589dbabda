/**
 * A bare aedes broker (accepts everyone, acknowledges at once, stores nothing) in a process of its own: what
 * aedes's whole publish path sustains on this machine, printed beside Mosquitto's (ingest takes telemetry from
 * the packet parser before that path: ingest/mqtt-telemetry-route.ts).
 */
import net from 'node:net';
import { Aedes } from 'aedes';

const broker = await Aedes.createBroker();
const server = net.createServer({ noDelay: true }, broker.handle);
server.listen(0, '127.0.0.1', () => {
  process.send?.({ cmd: 'ready', mqttPort: (server.address() as net.AddressInfo).port });
});
process.once('SIGTERM', () => broker.close(() => server.close(() => process.exit(0))));
