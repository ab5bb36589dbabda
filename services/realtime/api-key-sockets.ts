import type { Logger } from '../shared/log.js';
import { CloseCode, CloseReason } from './live-protocol.js';
import type { LiveSocket } from './live-socket.js';

/**
 * Sockets opened with an API key, re-checked every few seconds: a key revoked through the API (or whose
 * user was disabled, or whose plan lost API access) answers 401 from then on (docs/design.md, "REST API"), so its
 * open sockets end too (4001), rather than streaming until they reconnect. One check per key, however many
 * sockets share it. Session sockets need none of this: they end when their token does.
 */
export class ApiKeySockets {
  private readonly byKey = new Map<string, Set<LiveSocket>>();
  private readonly timer: NodeJS.Timeout;
  private checking = false;

  constructor(private readonly stillValid: (apiKey: string) => Promise<boolean>, private readonly log: Logger, everyMs = 5_000) {
    this.timer = setInterval(() => void this.recheck(), everyMs);
    this.timer.unref();
  }

  add(socket: LiveSocket, apiKey: string): void {
    let sockets = this.byKey.get(apiKey);
    if (!sockets) this.byKey.set(apiKey, (sockets = new Set()));
    sockets.add(socket);
  }

  remove(socket: LiveSocket, apiKey: string): void {
    const sockets = this.byKey.get(apiKey);
    sockets?.delete(socket);
    if (sockets?.size === 0) this.byKey.delete(apiKey);
  }

  async recheck(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const [apiKey, sockets] of [...this.byKey]) {
        let valid: boolean;
        try {
          valid = await this.stillValid(apiKey);
        } catch (err) {
          this.log.warn({ err }, 'live: API key re-check failed; trying again later');
          continue; // the database being away is no reason to drop dispatchers
        }
        if (valid) continue;
        for (const socket of sockets) socket.ws?.end(CloseCode.tokenExpired, CloseReason.credentialsRevoked);
      }
    } finally {
      this.checking = false;
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
