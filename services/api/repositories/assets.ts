import type { AssetState } from '../../shared/contracts/domain.js';
import type { Queryable } from '../../shared/db.js';
import { compileFence, type FenceRow } from '../../shared/geofence/fence-shapes.js';
import { badReference, conflict, notFound } from '../../shared/contracts/errors.js';
import { createHistory, type Actor, type VersionEntry } from '../history.js';
import { listPage, type ListQuery, type ListResult } from '../pagination.js';
import { assertVersion, type Precondition } from '../preconditions.js';
import { checkReferences } from '../references.js';
import { containsPattern, SqlParams } from '../sql.js';


export interface AssetPosition {
  ts: Date | null;
  lat: number;
  lon: number;
  speed_mps: number | null;
  heading_deg: number | null;
  accuracy_m: number | null;
}

/** An asset's own fields: what its versions hold and a restore brings back. */
export interface AssetRecord {
  id: string;
  name: string;
  make: string | null;
  model: string | null;
  serial: string | null;
  client_id: string | null;
  device_id: string | null;
  state: AssetState;
  metadata: Record<string, unknown>;
  status: 'active' | 'archived';
  archived_at: Date | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** As answered: the record plus live readings of its device. */
export interface Asset extends AssetRecord {
  last_seen_at: Date | null;
  last_position: AssetPosition | null;
}

export type AssetFields = Pick<AssetRecord, 'name' | 'make' | 'model' | 'serial' | 'client_id' | 'device_id' | 'state' | 'metadata'>;

export interface AssetFilters {
  name?: string;
  make?: string;
  model?: string;
  serial?: string;
  client_id?: string;
  device_id?: string;
  state?: AssetState;
  status?: 'active' | 'archived' | 'all';
  zone?: string;
}

export interface AssetFilterOptions {
  makes: string[];
  models: string[];
  clients: { id: string; name: string }[];
  states: AssetState[];
}

export const ASSET_SORT_FIELDS = ['created_at', 'updated_at', 'name', 'make', 'model', 'state', 'last_seen_at'] as const;

/** The fields a version records and a restore brings back (`status` through `archived_at`). */
const VERSIONED_FIELDS = ['name', 'make', 'model', 'serial', 'client_id', 'device_id', 'state', 'metadata', 'status'] as const;

interface AssetRow extends Omit<Asset, 'status' | 'last_position'> {
  last_fix_ts: Date | null;
  lat: number | null;
  lon: number | null;
  speed_mps: number | null;
  heading_deg: number | null;
  accuracy_m: number | null;
}

const SELECT = `a.id, a.name, a.make, a.model, a.serial, a.client_id, d.id as device_id, a.state, a.metadata, a.archived_at,
  a.version, a.created_at, a.updated_at, s.last_seen_at, s.last_fix_ts, s.lat, s.lon, s.speed_mps, s.heading_deg, s.accuracy_m`;
// At most one active device per asset (unique index devices_asset): the join never multiplies rows.
const FROM = `assets a
  left join devices d on d.asset_id = a.id and d.disabled_at is null
  left join device_state s on s.device_id = d.id`;

/**
 * Assets (machines, vehicles) of the tenant set on `db`. The link to a tracker lives on the device
 * (`devices.asset_id`), so ingest stamps the asset on every fix from the moment it is linked: the
 * device row's change notice makes ingest drop the cached credentials that carry it. Every change is
 * a version in `object_versions`, and any version can be restored.
 */
export function createAssetRepository(db: Queryable, actor: Actor) {
  const history = createHistory(db, 'asset');

  const find = async (id: string, forUpdate = false): Promise<Asset | null> => {
    // `for update of a`: the asset row only; the outer joins' rows cannot be locked.
    const { rows } = await db.query<AssetRow>(`select ${SELECT} from ${FROM} where a.id = $1${forUpdate ? ' for update of a' : ''}`, [id]);
    return rows[0] ? toAsset(rows[0]) : null;
  };

  /** Points `deviceId` (or no device) at the asset; the device's change notice reaches ingest on commit. */
  const linkDevice = async (assetId: string, deviceId: string | null): Promise<void> => {
    if (deviceId) {
      const { rows } = await db.query<{ asset_id: string | null; disabled: boolean }>(
        'select asset_id, disabled_at is not null as disabled from devices where id = $1 for update', [deviceId]);
      const device = rows[0];
      if (!device) throw badReference('device_id', 'device');
      if (device.disabled) throw conflict('the device is disabled', [{ path: 'device_id', message: 'is disabled' }]);
      if (device.asset_id && device.asset_id !== assetId) {
        throw conflict('the device tracks another asset', [{ path: 'device_id', message: `is linked to asset ${device.asset_id}` }]);
      }
    }
    await db.query(
      `update devices set asset_id = null, updated_at = now()
        where asset_id = $1 and disabled_at is null and id is distinct from $2`,
      [assetId, deviceId],
    );
    if (deviceId) await db.query('update devices set asset_id = $1, updated_at = now() where id = $2 and asset_id is distinct from $1', [assetId, deviceId]);
  };

  /** Writes the asset's own columns and its device link; returns the asset as answered. */
  const write = async (id: string, fields: Partial<AssetFields> & { archived_at?: Date | string | null }): Promise<Asset> => {
    const params = new SqlParams();
    const idParam = params.add(id);
    const sets = ['updated_at = now()'];
    for (const column of ['name', 'make', 'model', 'serial', 'client_id', 'state', 'archived_at'] as const) {
      if (fields[column] !== undefined) sets.push(`${column} = ${params.add(fields[column])}`);
    }
    if (fields.metadata !== undefined) sets.push(`metadata = ${params.add(JSON.stringify(fields.metadata))}`);
    await db.query(`update assets set ${sets.join(', ')} where id = ${idParam}`, params.values);
    if (fields.device_id !== undefined) await linkDevice(id, fields.device_id);
    return (await find(id))!;
  };

  /** Locks the asset and checks If-Match; 404 when there is no such asset. */
  const lock = async (id: string, precondition: Precondition | null): Promise<Asset> => {
    const current = await find(id, true);
    if (!current) throw notFound('asset');
    assertVersion(precondition, current.version, 'asset');
    return current;
  };

  const record = (action: string, before: Asset | null, after: Asset, restoredFrom?: number) =>
    history.record({ action, actor, before, after, fields: VERSIONED_FIELDS, snapshot: recordOf(after), restoredFrom });

  return {
    find,

    async list(filters: AssetFilters, query: ListQuery): Promise<ListResult<Asset>> {
      const params = new SqlParams();
      const where: string[] = [];
      const status = filters.status ?? 'active';
      if (status !== 'all') where.push(status === 'archived' ? 'a.archived_at is not null' : 'a.archived_at is null');
      if (filters.name) where.push(`a.name ilike ${params.add(containsPattern(filters.name))}`);
      if (filters.make) where.push(`lower(a.make) = lower(${params.add(filters.make)})`);
      if (filters.model) where.push(`lower(a.model) = lower(${params.add(filters.model)})`);
      if (filters.serial) where.push(`a.serial = ${params.add(filters.serial)}`);
      if (filters.client_id) where.push(`a.client_id = ${params.add(filters.client_id)}`);
      if (filters.device_id) where.push(`d.id = ${params.add(filters.device_id)}`);
      if (filters.state) where.push(`a.state = ${params.add(filters.state)}`);
      if (filters.zone) where.push(`a.id = any(${params.add(await assetsInZone(db, filters.zone))}::uuid[])`);
      const page = await listPage<AssetRow>(db, {
        select: SELECT,
        from: FROM,
        where,
        params,
        id: 'a.id',
        sortable: {
          created_at: 'a.created_at',
          updated_at: 'a.updated_at',
          name: 'lower(a.name)',
          make: "coalesce(lower(a.make), '')",
          model: "coalesce(lower(a.model), '')",
          state: 'a.state',
          last_seen_at: "coalesce(s.last_seen_at, '-infinity')",
        },
        defaultSort: 'created_at',
      }, query);
      return { ...page, data: page.data.map(toAsset) };
    },

    /** The values in use among the tenant's active assets, for a filter form. */
    async filterOptions(): Promise<AssetFilterOptions> {
      const { rows } = await db.query<AssetFilterOptions>(
        `select
           coalesce((select array_agg(m order by lower(m), m) from (select distinct make as m from assets where archived_at is null and make is not null) x), '{}') as makes,
           coalesce((select array_agg(m order by lower(m), m) from (select distinct model as m from assets where archived_at is null and model is not null) x), '{}') as models,
           coalesce((select jsonb_agg(jsonb_build_object('id', c.id, 'name', c.name) order by lower(c.name), c.id) from clients c
                      where exists (select 1 from assets a where a.client_id = c.id and a.archived_at is null)), '[]') as clients,
           coalesce((select array_agg(state order by state) from (select distinct state from assets where archived_at is null) x), '{}') as states`,
      );
      return rows[0]!;
    },

    async create(fields: AssetFields): Promise<Asset> {
      await checkReferences(db, [{ path: 'client_id', table: 'clients', id: fields.client_id, what: 'client' }]);
      const { rows } = await db.query<{ id: string }>(
        `insert into assets (tenant_id, name, make, model, serial, client_id, state, metadata)
         values (app_tenant(), $1, $2, $3, $4, $5, $6, $7) returning id`,
        [fields.name, fields.make, fields.model, fields.serial, fields.client_id, fields.state, JSON.stringify(fields.metadata)],
      );
      const id = rows[0]!.id;
      if (fields.device_id) await linkDevice(id, fields.device_id);
      const asset = (await find(id))!;
      await record('created', null, asset);
      return asset;
    },

    async update(id: string, changes: Partial<AssetFields>, precondition: Precondition | null): Promise<Asset> {
      const before = await lock(id, precondition);
      await checkReferences(db, [{ path: 'client_id', table: 'clients', id: changes.client_id, what: 'client' }]);
      const after = await write(id, changes);
      await record('updated', before, after);
      return after;
    },

    /** Archiving hides the asset from lists (`?status=archived` shows it); it keeps its device and history. */
    async setArchived(id: string, archived: boolean, precondition: Precondition | null): Promise<Asset> {
      const before = await lock(id, precondition);
      if ((before.status === 'archived') === archived) return before;
      const after = await write(id, { archived_at: archived ? new Date() : null });
      await record(archived ? 'archived' : 'unarchived', before, after);
      return after;
    },

    versions(id: string, query: ListQuery): Promise<ListResult<VersionEntry<AssetRecord>>> {
      return history.list<AssetRecord>(id, query);
    },

    /**
     * Makes a past version current again, as a new version (nothing is rewritten). Refused (409) when
     * what it names is gone or taken: a deleted client, a device deleted or tracking another asset.
     */
    async restore(id: string, version: number, precondition: Precondition | null): Promise<Asset> {
      const before = await lock(id, precondition);
      const past = await history.find<AssetRecord>(id, version);
      if (!past) throw notFound('asset version');
      const snapshot = past.snapshot;
      const { rows } = await db.query<{ client: boolean; device: boolean }>(
        'select $1::uuid is null or exists (select 1 from clients where id = $1) as client, $2::uuid is null or exists (select 1 from devices where id = $2) as device',
        [snapshot.client_id, snapshot.device_id],
      );
      if (!rows[0]!.client) throw conflict(`version ${version} names a client that no longer exists`, [{ path: 'client_id', message: 'no longer exists' }]);
      if (!rows[0]!.device) throw conflict(`version ${version} names a device that no longer exists`, [{ path: 'device_id', message: 'no longer exists' }]);
      const target = {
        name: snapshot.name,
        make: snapshot.make,
        model: snapshot.model,
        serial: snapshot.serial,
        client_id: snapshot.client_id,
        device_id: snapshot.device_id,
        state: snapshot.state,
        metadata: snapshot.metadata,
        archived_at: snapshot.archived_at,
      };
      const same = VERSIONED_FIELDS.every((f) => JSON.stringify(f === 'status' ? snapshot.status : target[f]) === JSON.stringify(before[f]));
      // Already as that version: nothing to write, and no empty version.
      if (same) return before;
      const after = await write(id, target);
      await record('restored', before, after, version);
      return after;
    },
  };
}

export type AssetRepository = ReturnType<typeof createAssetRepository>;

/**
 * Assets whose last position (their device's `device_state`) lies inside the fence: a bounding-box
 * prefilter in SQL, then the same geometry the geofence evaluator uses. 400 for a fence that is not there.
 */
async function assetsInZone(db: Queryable, geofenceId: string): Promise<string[]> {
  const { rows: fences } = await db.query<FenceRow>(
    'select id, tenant_id, name, kind, geometry, radius_m, width_m, confirm_fixes, schedule, asset_filter from geofences where id = $1',
    [geofenceId],
  );
  const fence = fences[0] ? compileFence(fences[0]) : null;
  if (!fence) throw badReference('zone', 'geofence');
  const { rows } = await db.query<{ id: string; lat: number; lon: number }>(
    `select a.id, s.lat, s.lon
       from assets a
       join devices d on d.asset_id = a.id and d.disabled_at is null
       join device_state s on s.device_id = d.id
      where s.lon between $1 and $2 and s.lat between $3 and $4`,
    [fence.minLon, fence.maxLon, fence.minLat, fence.maxLat],
  );
  return rows.filter((r) => fence.contains(r.lon, r.lat)).map((r) => r.id);
}

/** The asset's own fields, without its device's live readings. */
function recordOf(asset: Asset): AssetRecord {
  const { last_seen_at: _seen, last_position: _position, ...own } = asset;
  return own;
}

function toAsset(row: AssetRow): Asset {
  return {
    id: row.id,
    name: row.name,
    make: row.make,
    model: row.model,
    serial: row.serial,
    client_id: row.client_id,
    device_id: row.device_id,
    state: row.state,
    metadata: row.metadata,
    status: row.archived_at ? 'archived' : 'active',
    archived_at: row.archived_at,
    version: row.version,
    created_at: row.created_at,
    updated_at: row.updated_at,
    last_seen_at: row.last_seen_at,
    last_position: row.lat === null || row.lon === null
      ? null
      : { ts: row.last_fix_ts, lat: row.lat, lon: row.lon, speed_mps: row.speed_mps, heading_deg: row.heading_deg, accuracy_m: row.accuracy_m },
  };
}
