import type { Logger } from '../shared/log.js';
import { CloseCode, CloseReason } from './live-protocol.js';
import type { LiveSocket } from './live-socket.js';

/**
 * Open sockets by the credential they were opened with, each credential re-checked every few seconds: an
 * API key revoked through the API (or whose user was disabled or demoted below `live.read`, or whose plan
 * lost API access), or a session whose user was disabled, deleted, re-roled or given a new password,
 * answers 401 from then on (docs/design.md, "Reliability and security"), so its open sockets end too
 * (4001), rather than streaming until they reconnect. Every open credential is checked in one pass
 * (`validOf`: sessions a query per tenant, API keys one each), however many sockets share each. A
 * session's socket also ends when its token expires (live-hub.ts).
 */
export class CredentialSockets {
  private readonly byCredential = new Map<string, Set<LiveSocket>>();
  private readonly timer: NodeJS.Timeout;
  private checking = false;

  constructor(private readonly validOf: (credentials: string[]) => Promise<Set<string>>, private readonly log: Logger, everyMs = 5_000) {
    this.timer = setInterval(() => void this.recheck(), everyMs);
    this.timer.unref();
  }

  add(socket: LiveSocket, credential: string): void {
    let sockets = this.byCredential.get(credential);
    if (!sockets) this.byCredential.set(credential, (sockets = new Set()));
    sockets.add(socket);
  }

  remove(socket: LiveSocket, credential: string): void {
    const sockets = this.byCredential.get(credential);
    sockets?.delete(socket);
    if (sockets?.size === 0) this.byCredential.delete(credential);
  }

  async recheck(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const open = [...this.byCredential];
      let valid: Set<string>;
      try {
        valid = await this.validOf(open.map(([credential]) => credential));
      } catch (err) {
        this.log.warn({ err }, 'live: credential re-check failed; trying again later');
        return; // the database being away is no reason to drop dispatchers
      }
      for (const [credential, sockets] of open) {
        if (valid.has(credential)) continue;
        for (const socket of sockets) {
          // A session past its expiry fails the check too; its close says so, as the expiry timer's would.
          const expired = socket.expiresAtMs !== null && socket.expiresAtMs <= Date.now();
          socket.ws?.end(CloseCode.tokenExpired, expired ? CloseReason.tokenExpired : CloseReason.credentialsRevoked);
        }
      }
    } finally {
      this.checking = false;
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
