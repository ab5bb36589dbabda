import type { Client, PublishPacket } from 'aedes';

/** The parts of an aedes 1.x client that the route relies on (lib/client.js, lib/handlers/index.js). */
interface RoutedClient {
  _parser?: { listeners(event: 'packet'): ((this: unknown, packet: unknown) => void)[]; removeListener(event: 'packet', fn: (packet: unknown) => void): void; on(event: 'packet', fn: (packet: unknown) => void): void };
  _keepaliveInterval: number;
  _keepaliveTimer: NodeJS.Timeout | null;
}

/**
 * Takes a connected client's telemetry PUBLISHes from its packet parser before aedes handles them, and leaves every
 * other packet (CONNECT, SUBSCRIBE, PINGREQ, PUBLISHes it declines) to aedes as before. No one may subscribe to a
 * telemetry topic (authorizeSubscribe), so aedes's work on such a message — topic checks, the publish series, a
 * packet copy, the subscription match in mqemitter — was spent on nothing: ~8% of an ingest process's CPU under
 * the single-fix bench. `take` returns false to hand the packet to aedes; when it returns true the route does
 * the one thing aedes's handler would still have done for it: restart the keep-alive timer [MQTT-3.1.2-24].
 *
 * The parser's `packet` listener is aedes's `enqueue`; test/ingest/mqtt-route.test.ts pins what this relies on,
 * so an aedes upgrade that moves it fails there.
 */
export function routeTelemetry(client: Client, take: (packet: PublishPacket) => boolean): void {
  const routed = client as unknown as RoutedClient;
  const parser = routed._parser;
  const listeners = parser?.listeners('packet');
  if (!parser || listeners?.length !== 1 || typeof routed._keepaliveInterval !== 'number') {
    throw new Error('aedes client without the expected packet parser: telemetry cannot be routed');
  }
  const enqueue = listeners[0]!;
  parser.removeListener('packet', enqueue);
  parser.on('packet', function routePacket(this: unknown, packet: unknown) {
    if ((packet as { cmd: string }).cmd === 'publish' && take(packet as PublishPacket)) {
      if (routed._keepaliveInterval > 0) routed._keepaliveTimer?.refresh();
      return;
    }
    enqueue.call(this, packet);
  });
}
