import { PgError, pgErrorCode, type Queryable } from '../../shared/db.js';
import { randomSecret, sha256 } from '../../shared/secrets.js';
import type { DeviceKind } from '../../shared/contracts/domain.js';
import { badReference, conflict } from '../../shared/contracts/errors.js';
import { checkIfMatch, type Precondition } from '../preconditions.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { SqlParams } from '../sql.js';

export interface LastPosition {
  ts: Date | null;
  lat: number;
  lon: number;
  speed_mps: number | null;
  heading_deg: number | null;
  accuracy_m: number | null;
  battery_pct: number | null;
}

export interface Device {
  id: string;
  name: string;
  kind: DeviceKind;
  asset_id: string | null;
  site_id: string | null;
  status: 'active' | 'disabled';
  disabled_at: Date | null;
  token_rotated_at: Date | null;
  last_seen_at: Date | null;
  last_position: LastPosition | null;
  /** Messages or fixes ingest refused from this device, by reason (written by ingest about once a second). */
  rejected: Record<string, number>;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export interface DeviceFilters {
  kind?: DeviceKind;
  asset_id?: string;
  site_id?: string;
  status?: 'active' | 'disabled';
}

export interface DeviceLinks {
  asset_id?: string | null;
  site_id?: string | null;
}

export const DEVICE_SORT_FIELDS = ['created_at', 'name', 'last_seen_at'] as const;

interface DeviceRow extends Omit<Device, 'status' | 'last_position'> {
  lat: number | null;
  lon: number | null;
  last_fix_ts: Date | null;
  speed_mps: number | null;
  heading_deg: number | null;
  accuracy_m: number | null;
  battery_pct: number | null;
}

const SELECT = `d.id, d.name, d.kind, d.asset_id, d.site_id, d.disabled_at, d.token_rotated_at, d.version, d.created_at, d.updated_at,
  s.last_seen_at, s.last_fix_ts, s.lat, s.lon, s.speed_mps, s.heading_deg, s.accuracy_m, s.battery_pct,
  (select coalesce(jsonb_object_agg(r.reason, r.count), '{}') from device_rejections r where r.device_id = d.id) as rejected`;
const FROM = 'devices d left join device_state s on s.device_id = d.id';

/**
 * Devices of the tenant set on `db`. A device token is a long random secret stored as its SHA-256
 * (docs/design.md, "Device contract"); the token itself leaves only in the create and rotate answers.
 */
export function createDeviceRepository(db: Queryable) {
  const find = async (id: string): Promise<Device | null> => {
    const { rows } = await db.query<DeviceRow>(`select ${SELECT} from ${FROM} where d.id = $1`, [id]);
    return rows[0] ? toDevice(rows[0]) : null;
  };

  /**
   * Foreign keys are checked without row-level security, so they would accept another tenant's asset:
   * the links are checked here, under the tenant, and answer like a missing object.
   */
  const checkLinks = async (links: DeviceLinks): Promise<void> => {
    if (links.asset_id) {
      const { rowCount } = await db.query('select 1 from assets where id = $1', [links.asset_id]);
      if (!rowCount) throw badReference('asset_id', 'asset');
    }
    if (links.site_id) {
      // A site, or (as before sites existed) a geofence of kind `site`: the punch verifier resolves either.
      const { rowCount } = await db.query(
        `select 1 from sites where id = $1 union all select 1 from geofences where id = $1 and kind = 'site'`, [links.site_id]);
      if (!rowCount) throw badReference('site_id', "site (or geofence of kind 'site')");
    }
  };

  return {
    find,

    list(filters: DeviceFilters, query: ListQuery): Promise<ListResult<Device>> {
      const params = new SqlParams();
      const where: string[] = [];
      if (filters.kind) where.push(`d.kind = ${params.add(filters.kind)}`);
      if (filters.asset_id) where.push(`d.asset_id = ${params.add(filters.asset_id)}`);
      if (filters.site_id) {
        // Devices named after the site, or after the site's geofence.
        const site = params.add(filters.site_id);
        where.push(`(d.site_id = ${site} or d.site_id = (select geofence_id from sites where id = ${site}))`);
      }
      if (filters.status) where.push(filters.status === 'disabled' ? 'd.disabled_at is not null' : 'd.disabled_at is null');
      return listPage<DeviceRow>(db, {
        select: SELECT,
        from: FROM,
        where,
        params,
        id: 'd.id',
        sortable: { created_at: 'd.created_at', name: 'd.name', last_seen_at: "coalesce(s.last_seen_at, '-infinity')" },
        defaultSort: 'created_at',
      }, query).then((page) => ({ ...page, data: page.data.map(toDevice) }));
    },

    async create(input: { name: string; kind: DeviceKind } & DeviceLinks): Promise<{ device: Device; token: string }> {
      await checkLinks(input);
      const token = randomSecret(32);
      // Inserted and read back in one statement: a new device has no device_state row yet, so the
      // join (which sees the statement's snapshot) gives the same answer as a find() after the insert.
      const { rows } = await db.query<DeviceRow>({
        name: 'fieldops_device_create',
        text: `with d as (
           insert into devices (tenant_id, name, kind, token_hash, asset_id, site_id)
           values (app_tenant(), $1, $2, $3, $4, $5) returning *)
         select ${SELECT} from d left join device_state s on s.device_id = d.id`,
        values: [input.name, input.kind, sha256(token), input.asset_id ?? null, input.site_id ?? null],
      }).catch(assetTaken);
      return { device: toDevice(rows[0]!), token };
    },

    async update(id: string, changes: { name?: string } & DeviceLinks, precondition: Precondition | null = null): Promise<Device | null> {
      if (!(await checkIfMatch(db, 'devices', id, precondition, 'device'))) return null;
      await checkLinks(changes);
      const params = new SqlParams();
      const idParam = params.add(id);
      const sets = ['updated_at = now()'];
      if (changes.name !== undefined) sets.push(`name = ${params.add(changes.name)}`);
      if (changes.asset_id !== undefined) sets.push(`asset_id = ${params.add(changes.asset_id)}`);
      if (changes.site_id !== undefined) sets.push(`site_id = ${params.add(changes.site_id)}`);
      const { rowCount } = await db.query(`update devices set ${sets.join(', ')} where id = ${idParam}`, params.values).catch(assetTaken);
      return rowCount ? find(id) : null;
    },

    /** A new token replaces the old one at once; ingest drops its cached credentials on the change notice. */
    async rotateToken(id: string, precondition: Precondition | null = null): Promise<{ device: Device; token: string } | null> {
      if (!(await checkIfMatch(db, 'devices', id, precondition, 'device'))) return null;
      const token = randomSecret(32);
      const { rowCount } = await db.query(
        'update devices set token_hash = $2, token_rotated_at = now(), updated_at = now() where id = $1',
        [id, sha256(token)],
      );
      return rowCount ? { device: (await find(id))!, token } : null;
    },

    async setDisabled(id: string, disabled: boolean, precondition: Precondition | null = null): Promise<Device | null> {
      if (!(await checkIfMatch(db, 'devices', id, precondition, 'device'))) return null;
      const { rowCount } = await db.query(
        `update devices set disabled_at = ${disabled ? 'coalesce(disabled_at, now())' : 'null'}, updated_at = now() where id = $1`,
        [id],
      ).catch(assetTaken);
      return rowCount ? find(id) : null;
    },

    async delete(id: string, precondition: Precondition | null = null): Promise<boolean> {
      if (!(await checkIfMatch(db, 'devices', id, precondition, 'device'))) return false;
      const { rowCount } = await db.query('delete from devices where id = $1', [id]);
      return rowCount === 1;
    },
  };
}

export type DeviceRepository = ReturnType<typeof createDeviceRepository>;

// Built field by field: it runs for every row of every list, and rest/spread copies are the slow path.
function toDevice(row: DeviceRow): Device {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    asset_id: row.asset_id,
    site_id: row.site_id,
    status: row.disabled_at ? 'disabled' : 'active',
    disabled_at: row.disabled_at,
    token_rotated_at: row.token_rotated_at,
    last_seen_at: row.last_seen_at,
    last_position: row.lat === null || row.lon === null
      ? null
      : {
          ts: row.last_fix_ts, lat: row.lat, lon: row.lon, speed_mps: row.speed_mps, heading_deg: row.heading_deg,
          accuracy_m: row.accuracy_m, battery_pct: row.battery_pct,
        },
    rejected: row.rejected,
    version: row.version,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** One active device per asset (index `devices_asset`): a second one is a conflict, not a server error. */
function assetTaken(err: unknown): never {
  if (pgErrorCode(err) === PgError.uniqueViolation && (err as { constraint?: string }).constraint === 'devices_asset') {
    throw conflict('the asset already has an active device', [{ path: 'asset_id', message: 'already has an active device' }]);
  }
  throw err;
}
