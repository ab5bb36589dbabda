import type { Queryable } from '../shared/db.js';
import type { Principal } from '../shared/principal.js';
import { listPage, type ListQuery, type ListResult } from './pagination.js';
import { SqlParams } from './sql.js';

/**
 * Version history (docs/design.md, "REST conventions"): every change of a versioned object is a row
 * of `object_versions` — who (user, API key), when, the action, each changed field's from and to, and
 * the object as the API answered it afterwards. Written in the transaction of the change, so a
 * rolled-back change leaves no history. Work orders show it as their status history; assets restore
 * earlier versions from the snapshots.
 */

export type HistoryObjectType = 'work_order' | 'asset' | 'quote';

/** Who makes a change: the tenant, the user (for an API key, the user it acts for) and the key, if one was used. */
export interface Actor {
  tenantId: string;
  userId: string | null;
  apiKeyId: string | null;
}

export const actorOf = (principal: Principal): Actor => ({ tenantId: principal.tenantId, userId: principal.userId, apiKeyId: principal.apiKeyId ?? null });

export type FieldChanges = Record<string, { from: unknown; to: unknown }>;

export interface VersionEntry<T = Record<string, unknown>> {
  version: number;
  action: string;
  changed_at: Date;
  changed_by: string | null;
  api_key_id: string | null;
  changes: FieldChanges;
  snapshot: T;
  restored_from: number | null;
}

/** A versioned object as history needs it: its id, its version after the change, and its fields. */
export interface Versioned {
  id: string;
  version: number;
}

/**
 * The fields that differ between two answers of the same object, compared as JSON (a `Date` and its
 * ISO string are equal). Bookkeeping fields (`version`, `updated_at`) are left out.
 */
export function diffFields(before: object | null, after: object, fields: readonly string[]): FieldChanges {
  const changes: FieldChanges = {};
  for (const field of fields) {
    const from = before ? (before as Record<string, unknown>)[field] ?? null : null;
    const to = (after as Record<string, unknown>)[field] ?? null;
    if (JSON.stringify(from) !== JSON.stringify(to)) changes[field] = { from: asJson(from), to: asJson(to) };
  }
  return changes;
}

const asJson = (value: unknown): unknown => (value instanceof Date ? value.toISOString() : value);

export interface Change {
  action: string;
  actor: Actor;
  /** The object before the change; null when it was created. */
  before: object | null;
  after: Versioned;
  /** The fields whose changes are recorded. */
  fields: readonly string[];
  /** What to keep of the object (default: `after` whole); leave out live readings. */
  snapshot?: object;
  /** A restore: the version brought back. */
  restoredFrom?: number;
}

export function createHistory(db: Queryable, objectType: HistoryObjectType) {
  return {
    /** Records one change (`before` is null for the creation); returns what changed. */
    async record(change: Change): Promise<FieldChanges> {
      const { after } = change;
      const changes = diffFields(change.before, after, change.fields);
      await db.query({
        name: 'fieldops_history_record',
        text: `insert into object_versions (tenant_id, object_type, object_id, version, action, changed_by, api_key_id, changes, snapshot, restored_from)
               values (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        values: [objectType, after.id, after.version, change.action, change.actor.userId, change.actor.apiKeyId,
          JSON.stringify(changes), JSON.stringify(change.snapshot ?? after), change.restoredFrom ?? null],
      });
      return changes;
    },

    /** An object's versions, newest first by default. */
    list<T>(objectId: string, query: ListQuery): Promise<ListResult<VersionEntry<T>>> {
      const params = new SqlParams();
      return listPage<VersionEntry<T>>(db, {
        select: 'v.version, v.action, v.changed_at, v.changed_by, v.api_key_id, v.changes, v.snapshot, v.restored_from',
        from: 'object_versions v',
        where: [`v.object_type = ${params.add(objectType)}`, `v.object_id = ${params.add(objectId)}`],
        params,
        id: 'v.version',
        sortable: { version: 'v.version', changed_at: 'v.changed_at' },
        defaultSort: '-version',
      }, query);
    },

    async find<T>(objectId: string, version: number): Promise<VersionEntry<T> | null> {
      const { rows } = await db.query<VersionEntry<T>>(
        `select version, action, changed_at, changed_by, api_key_id, changes, snapshot, restored_from from object_versions
          where object_type = $1 and object_id = $2 and version = $3`,
        [objectType, objectId, version],
      );
      return rows[0] ?? null;
    },
  };
}

export type History = ReturnType<typeof createHistory>;
