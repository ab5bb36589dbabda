import type { Pool, PoolClient } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import { FenceIndex } from './fence-index.js';
import { compileFence, type CompiledFence, type FenceRow } from '../shared/geofence/fence-shapes.js';

const CHANGE_CHANNEL = 'geofence_changed';
const RELOAD_DEBOUNCE_MS = 20;

/**
 * Every tenant's fence index, loaded on first use and rebuilt when the `geofence_changed` notice
 * (sent on commit by a trigger, whatever wrote the change) names the tenant: a change reaches the
 * evaluators within tens of milliseconds. After the listening connection drops, every loaded tenant
 * is reloaded, since notices sent meanwhile are lost.
 */
export class FenceCache {
  private readonly indexes = new Map<string, FenceIndex>();
  /** Latest load started per tenant, so that a slow, older load never replaces a newer one. */
  private readonly loadSeq = new Map<string, number>();
  private readonly stale = new Set<string>();
  private listener: PoolClient | null = null;
  private reloadTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private seq = 0;

  constructor(private readonly pool: Pool, private readonly log: Logger) {}

  async start(): Promise<void> {
    await this.listen();
  }

  isLoaded(tenantId: string): boolean {
    return this.indexes.has(tenantId);
  }

  get(tenantId: string): FenceIndex {
    return this.indexes.get(tenantId) ?? FenceIndex.empty;
  }

  /** Loads the tenants not loaded yet, in one query. */
  async ensure(tenantIds: Iterable<string>): Promise<void> {
    const missing = [...new Set(tenantIds)].filter((t) => !this.indexes.has(t));
    if (missing.length) await this.load(missing);
  }

  async reload(tenantIds: string[]): Promise<void> {
    if (tenantIds.length) await this.load(tenantIds);
  }

  private async load(tenantIds: string[]): Promise<void> {
    const seq = ++this.seq;
    for (const t of tenantIds) this.loadSeq.set(t, seq);
    const { rows } = await this.pool.query<FenceRow>(
      `select id, tenant_id, name, kind, geometry, radius_m, width_m, confirm_fixes, schedule, asset_filter
         from geofences where tenant_id = any($1::uuid[])`,
      [tenantIds],
    );
    const byTenant = new Map<string, CompiledFence[]>(tenantIds.map((t) => [t, []]));
    for (const row of rows) {
      const fence = compileFence(row);
      if (fence) byTenant.get(row.tenant_id)!.push(fence);
      else this.log.warn({ geofence_id: row.id }, 'geofence has an incomplete shape; skipped');
    }
    for (const [tenantId, fences] of byTenant) {
      if (this.loadSeq.get(tenantId) === seq) this.indexes.set(tenantId, new FenceIndex(fences));
    }
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    try {
      const client = await this.pool.connect();
      client.on('notification', (msg) => this.onChange(msg.payload));
      client.on('error', (err) => this.onListenerLost(client, err));
      await client.query(`listen ${CHANGE_CHANNEL}`);
      this.listener = client;
    } catch (err) {
      this.log.warn({ err }, 'cannot listen for geofence changes; retrying');
      this.reconnectTimer = setTimeout(() => void this.listen(), 1000);
    }
  }

  private onListenerLost(client: PoolClient, err: Error): void {
    if (this.listener !== client) return;
    this.listener = null;
    client.release(err);
    if (this.closed) return;
    this.log.warn({ err }, 'geofence change listener lost; reconnecting and reloading');
    for (const t of this.indexes.keys()) this.stale.add(t);
    this.scheduleReload();
    this.reconnectTimer = setTimeout(() => void this.listen(), 500);
  }

  private onChange(payload: string | undefined): void {
    try {
      const { tenant_id: tenantId } = JSON.parse(payload ?? '{}') as { tenant_id?: string };
      if (tenantId && this.loadSeq.has(tenantId)) {
        this.stale.add(tenantId);
        this.scheduleReload();
      }
    } catch {
      this.log.warn({ payload }, 'unreadable geofence change notice');
    }
  }

  /** Coalesces a burst of changes (a bulk import) into one load. */
  private scheduleReload(): void {
    if (this.reloadTimer || this.closed) return;
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = null;
      const tenants = [...this.stale];
      this.stale.clear();
      this.reload(tenants).catch((err) => {
        this.log.warn({ err }, 'geofence reload failed; retrying');
        for (const t of tenants) this.stale.add(t);
        setTimeout(() => this.scheduleReload(), 1000).unref();
      });
    }, RELOAD_DEBOUNCE_MS);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.listener;
    this.listener = null;
    if (client) {
      await client.query(`unlisten ${CHANGE_CHANNEL}`).catch(() => {});
      client.release();
    }
  }
}
