import { PgError, pgErrorCode, type Queryable } from '../shared/db.js';
import { badRequest, conflict, type Issue } from '../shared/contracts/errors.js';

/** Tables an object may point at; a fixed set, so the name is never client input. */
export type ReferencedTable = 'clients' | 'sites' | 'assets' | 'employees' | 'devices' | 'geofences' | 'work_orders' | 'warehouses'
  | 'inspection_templates' | 'inventory_items';

export interface Reference {
  /** The request field, as an issue path (`client_id`). */
  path: string;
  table: ReferencedTable;
  id: string | null | undefined;
  /** How the object is named in the message (`client`). */
  what: string;
  /** An extra condition on the row (`kind = 'site'`), fixed text. */
  where?: string;
}

/**
 * Checks, under the tenant, that every id given names an object of this tenant — in one round trip.
 * Foreign keys are checked without row-level security and would accept another tenant's object, so
 * this runs before the write; a miss is 400 naming the field, the same answer for another tenant's
 * object as for one that does not exist.
 */
export async function checkReferences(db: Queryable, references: Reference[]): Promise<void> {
  const given = references.filter((r) => r.id);
  if (given.length === 0) return;
  const probes = given.map((r, i) => `exists (select 1 from ${r.table} where id = $${i + 1}${r.where ? ` and ${r.where}` : ''})`);
  const { rows } = await db.query<{ found: boolean[] }>(`select array[${probes.join(', ')}] as found`, given.map((r) => r.id));
  const issues: Issue[] = given.flatMap((r, i) => (rows[0]!.found[i] ? [] : [{ path: r.path, message: `no ${r.what} with this id` }]));
  if (issues.length) throw badRequest(`${issues.map((i) => i.path).join(', ')} ${issues.length > 1 ? 'do' : 'does'} not name an existing object`, issues);
}

/** A delete refused by a foreign key (others still point at the object) is a 409, not a server error. */
export function stillReferenced(err: unknown, what: string, by: string): never {
  if (pgErrorCode(err) === PgError.foreignKeyViolation) throw conflict(`the ${what} is still referenced by ${by}`);
  throw err;
}
