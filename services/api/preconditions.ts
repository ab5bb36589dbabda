import type { Queryable } from '../shared/db.js';
import { conflict } from '../shared/contracts/errors.js';

/**
 * Optimistic concurrency (docs/design.md, "REST conventions"). Every versioned object answers its
 * `version` as a strong ETag, `"<version>"`; a write that carries `If-Match` goes ahead only while the
 * object is still at one of the versions named, else 409 `conflict` and nothing is written.
 */

/** What `If-Match` asked for: any current version (`*`), or one of these. */
export interface Precondition {
  any: boolean;
  versions: number[];
}

export const etagOf = (version: number): string => `"${version}"`;

/**
 * Parses `If-Match`: `*`, or a comma-separated list of entity tags (`"3"`, and weak `W/"3"` leniently).
 * A tag that is not one of ours is kept as matching nothing, so the write is refused, not let through.
 */
export function parseIfMatch(header: string | string[] | undefined): Precondition | null {
  const text = Array.isArray(header) ? header.join(',') : header;
  if (text === undefined || text.trim() === '') return null;
  if (text.trim() === '*') return { any: true, versions: [] };
  const versions: number[] = [];
  for (const tag of text.split(',')) {
    const match = /^\s*(?:W\/)?"(\d{1,9})"\s*$/.exec(tag);
    if (match) versions.push(Number(match[1]));
  }
  return { any: false, versions };
}

/** Throws 409 naming the current version unless `precondition` (when given) admits it. */
export function assertVersion(precondition: Precondition | null, current: number, what: string): void {
  if (!precondition || precondition.any || precondition.versions.includes(current)) return;
  const asked = precondition.versions.length ? precondition.versions.map(etagOf).join(', ') : 'an unknown version';
  throw conflict(`the ${what} has changed: it is at version ${current}, not ${asked}`, [
    { path: 'If-Match', message: `the current ETag is ${etagOf(current)}` },
  ]);
}

/** Tables with a `version` column (migration 007); a fixed set, so the name is never client input. */
export type VersionedTable = 'users' | 'devices' | 'geofences' | 'assets' | 'employees' | 'clients' | 'sites' | 'work_orders'
  | 'quotes' | 'warehouses' | 'inventory_items' | 'inspection_templates' | 'purchase_orders' | 'webhooks';

/**
 * For a write that does not read the row first: with `If-Match`, locks the row for the rest of the
 * transaction and checks its version (a concurrent writer waits, then finds the version moved on).
 * Returns false when there is no such row; without `If-Match` it checks nothing and returns true, and
 * the write itself finds out whether the row exists.
 */
export async function checkIfMatch(db: Queryable, table: VersionedTable, id: string, precondition: Precondition | null, what: string): Promise<boolean> {
  if (!precondition) return true;
  const { rows } = await db.query<{ version: number }>(`select version from ${table} where id = $1 for update`, [id]);
  if (!rows[0]) return false;
  assertVersion(precondition, rows[0].version, what);
  return true;
}
