import type { DeviceKind } from '../shared/contracts/domain.js';
import pg from 'pg';
import type { AuthResult, DeviceAuthenticator, DeviceRecord, DeviceSession } from '../../ingest/devices.js';
import type { Pool } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import { sha256 } from '../shared/secrets.js';
import { AuthRefusals } from './auth-refusals.js';
import { CredentialLoader } from './credential-loader.js';

interface DeviceRow {
  id: string;
  tenant_id: string;
  kind: DeviceKind;
  token_hash: Buffer;
  asset_id: string | null;
  site_id: string | null;
  disabled_at: Date | null;
}

// Only the credential columns the ingest role is granted (migration 001).
const SELECT_DEVICE = 'select id, tenant_id, kind, token_hash, asset_id, site_id, disabled_at from devices';
const CACHE_TTL_MS = 10 * 60_000; // a safety net only: change notices invalidate entries at once
const MAX_CACHED = 200_000;

/**
 * Device credentials for every transport: token → device by its SHA-256 (docs/design.md, "Device contract"), cached, with the
 * `device_changed` notices (sent on commit by a trigger) dropping cache entries and cutting live sessions of a
 * device that was disabled, deleted or given a new token. The notices come on a connection of their own; if it
 * drops, the cache is emptied and every live session re-checked once it is back, so a missed notice is covered.
 * Look-ups are batched (CredentialLoader) and refusals remembered and limited per source (AuthRefusals).
 */
export class DeviceDirectory implements DeviceAuthenticator {
  private readonly cache = new Map<string, { device: DeviceRecord; expiresAt: number }>();
  private readonly loading = new Map<string, Promise<AuthResult>>();
  private readonly sessions = new Map<string, Set<DeviceSession>>();
  private readonly loader: CredentialLoader<DeviceRow>;
  private readonly refusals: AuthRefusals;
  private listener: pg.Client | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectAttempt = 0;
  private closed = false;
  /** Bumped by every change notice and by the loss of the notice connection (see load()). */
  private changes = 0;

  /**
   * `connectListener` makes the notice connection (not yet connected): a service role's own, outside the pool.
   * `maxFailuresPerMinute`: look-ups per source that may find no usable device before that source gets no more.
   */
  constructor(private readonly pool: Pool, private readonly connectListener: () => pg.Client, private readonly log: Logger,
    options: { maxFailuresPerMinute?: number; onLookupQuery?: () => void } = {}) {
    this.refusals = new AuthRefusals(options.maxFailuresPerMinute ?? 1000);
    this.loader = new CredentialLoader<DeviceRow>(
      async (hashes) => {
        options.onLookupQuery?.();
        const { rows } = await this.pool.query<DeviceRow>(`${SELECT_DEVICE} where token_hash = any($1::bytea[])`,
          [hashes.map((h) => Buffer.from(h, 'hex'))]);
        return rows;
      },
      (row) => row.token_hash.toString('hex'),
    );
  }

  async start(): Promise<void> {
    await this.listen();
  }

  /** `source`: where the connection comes from (its remote address), for the per-source limit of failed look-ups. */
  async authenticate(token: string, source = ''): Promise<AuthResult> {
    if (!token) return { ok: false, reason: 'unknown_token' };
    const hash = sha256(token).toString('hex');
    const cached = this.listener ? this.cache.get(hash) : undefined; // no notices, no trust in the cache
    if (cached && cached.expiresAt > Date.now()) return { ok: true, device: cached.device };
    const refused = this.listener ? this.refusals.cached(hash) : null;
    if (refused) return { ok: false, reason: refused };
    let pending = this.loading.get(hash);
    if (!pending) {
      if (!this.refusals.mayLookUp(source)) return { ok: false, reason: 'rate_limited' };
      pending = this.load(hash).finally(() => this.loading.delete(hash));
      this.loading.set(hash, pending);
    }
    const result = await pending;
    if (!result.ok && result.reason !== 'unavailable') this.refusals.failed(source);
    return result;
  }

  /**
   * A change notice that arrives while the query runs may concern this very device (disabled or rotated
   * just before the row was read): then the row is read again rather than cached as it was.
   */
  private async load(hash: string, attempt = 0): Promise<AuthResult> {
    const changesBefore = this.changes;
    let row: DeviceRow | null;
    try {
      row = await this.loader.load(hash);
    } catch (err) {
      this.log.warn({ err }, 'device lookup failed');
      return { ok: false, reason: 'unavailable' };
    }
    if (this.changes !== changesBefore && attempt < 3) return this.load(hash, attempt + 1);
    if (!row) {
      this.refusals.remember(hash, 'unknown_token', null);
      return { ok: false, reason: 'unknown_token' };
    }
    if (row.disabled_at) {
      this.refusals.remember(hash, 'device_disabled', row.id);
      return { ok: false, reason: 'device_disabled' };
    }
    const device = toRecord(row);
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(hash, { device, expiresAt: Date.now() + CACHE_TTL_MS });
    return { ok: true, device };
  }

  /** Tracks a live session; returns the function that forgets it (call it when the connection closes). */
  register(session: DeviceSession): () => void {
    let set = this.sessions.get(session.device.id);
    if (!set) this.sessions.set(session.device.id, (set = new Set()));
    set.add(session);
    return () => {
      const current = this.sessions.get(session.device.id);
      current?.delete(session);
      if (current?.size === 0) this.sessions.delete(session.device.id);
    };
  }

  sessionCount(): number {
    let n = 0;
    for (const set of this.sessions.values()) n += set.size;
    return n;
  }

  private async listen(): Promise<void> {
    const client = this.connectListener();
    client.on('notification', (msg) => {
      if (msg.channel === 'device_changed' && msg.payload) void this.deviceChanged([msg.payload]);
    });
    client.on('error', () => this.listenerLost(client));
    client.on('end', () => this.listenerLost(client));
    await client.connect();
    await client.query('listen device_changed');
    this.listener = client;
    this.reconnectAttempt = 0;
  }

  private listenerLost(client: pg.Client): void {
    if (this.closed || this.listener !== client) return;
    this.listener = null;
    this.changes++;
    client.removeAllListeners('end');
    client.end().catch(() => {});
    this.log.warn('device change notices lost; reconnecting');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delayMs = Math.min(5000, 100 * 2 ** this.reconnectAttempt++);
    this.reconnectTimer = setTimeout(async () => {
      this.reconnectTimer = null;
      try {
        await this.listen();
        // Notices sent while we were away are gone: start from the database's current truth.
        this.cache.clear();
        this.refusals.clear();
        await this.deviceChanged([...this.sessions.keys()]);
      } catch (err) {
        this.log.warn({ err }, 'device change notices: reconnect failed');
        this.scheduleReconnect();
      }
    }, delayMs);
    this.reconnectTimer.unref();
  }

  /** Drops cached credentials of these devices and re-checks their live sessions against the database. */
  private async deviceChanged(deviceIds: string[]): Promise<void> {
    if (this.closed) return;
    this.changes++;
    const ids = new Set(deviceIds);
    for (const [hash, entry] of this.cache) if (ids.has(entry.device.id)) this.cache.delete(hash);
    this.refusals.forgetDevices(ids);
    const live = deviceIds.filter((id) => this.sessions.has(id));
    if (live.length === 0) return;
    let rows: DeviceRow[];
    try {
      ({ rows } = await this.pool.query<DeviceRow>(`${SELECT_DEVICE} where id = any($1::uuid[])`, [live]));
    } catch (err) {
      this.log.warn({ err }, 'device re-check failed; retrying');
      setTimeout(() => void this.deviceChanged(live), 1000).unref();
      return;
    }
    const current = new Map(rows.map((r) => [r.id, r]));
    for (const id of live) {
      const row = current.get(id);
      for (const session of this.sessions.get(id) ?? []) {
        const reason = !row ? 'device_deleted'
          : row.disabled_at ? 'device_disabled'
            : row.token_hash.toString('hex') !== session.device.tokenHash ? 'token_rotated' : null;
        if (reason) {
          this.log.info({ device_id: id, reason }, 'device session cut off');
          session.disconnect(reason);
        } else {
          session.device = toRecord(row!); // e.g. linked to another asset or site: later rows carry it
        }
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const listener = this.listener;
    this.listener = null;
    await listener?.end().catch(() => {});
  }
}

function toRecord(row: DeviceRow): DeviceRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    kind: row.kind,
    tokenHash: row.token_hash.toString('hex'),
    assetId: row.asset_id,
    siteId: row.site_id,
  };
}
