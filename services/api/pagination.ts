import { createHash } from 'node:crypto';
import { Type, type Static, type TProperties, type TSchema } from '@fastify/type-provider-typebox';
import type { Queryable } from '../shared/db.js';
import { badRequest } from '../shared/contracts/errors.js';
import { StringEnum } from './schemas.js';
import { SqlParams } from './sql.js';

/**
 * Lists, the same way on every resource (docs/design.md, "REST API"):
 *
 *   querystring: listQuerySchema(['created_at', 'name'], { kind: Type.Optional(...) })
 *                → ?limit (default 50, max 100) &offset &cursor &sort=name|-name, plus the filters
 *   response:    { 200: listOf(Item) } → {"data":[…],"meta":{"total","limit","offset","next_cursor"}}
 *   repository:  const params = new SqlParams();   // ./sql.ts
 *                where.push(`d.kind = ${params.add(kind)}`);
 *                return listPage<Row>(db, { select, from, where, params, id: 'd.id', sortable, defaultSort }, query);
 *
 * `offset` pages by position; `next_cursor` (keyset: sort value + id of the last row) pages in
 * constant time and never skips or repeats a row when others are inserted meanwhile — use it for
 * high-volume lists. Set `total: false` there to skip the count (`meta.total` is then null, except on
 * a last page reached by offset, where it is known without counting).
 */

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 100;
/** Deeper pages by offset cost a scan of every row skipped; past this, `cursor` pages in constant time. */
export const MAX_OFFSET = 10_000;

export interface ListQuery {
  limit?: number;
  offset?: number;
  cursor?: string;
  sort?: string;
}

export const ListMeta = Type.Object({
  total: Type.Union([Type.Integer(), Type.Null()], { description: 'Rows matching the filters (null where not counted)' }),
  limit: Type.Integer(),
  offset: Type.Integer(),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as ?cursor= for the next page; null on the last one' }),
});

export type ListMetaValue = Static<typeof ListMeta>;

export interface ListResult<Row> {
  data: Row[];
  meta: ListMetaValue;
}

/** The list envelope for an item schema. */
export const listOf = <T extends TSchema>(item: T) => Type.Object({ data: Type.Array(item), meta: ListMeta });

/** Query-string schema: pagination, `sort` over the given fields (`name` or `-name`), and the resource's filters. */
export function listQuerySchema<F extends TProperties>(sortFields: readonly string[], filters: F) {
  const sortValues = sortFields.flatMap((field) => [field, `-${field}`]);
  return Type.Object({
    limit: Type.Optional(Type.Integer({ minimum: 1, description: `Page size, default ${DEFAULT_LIMIT}; values above ${MAX_LIMIT} are capped` })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_OFFSET, description: `Rows to skip (ignored with cursor), at most ${MAX_OFFSET}: page deeper with cursor` })),
    cursor: Type.Optional(Type.String({ maxLength: 1000, description: 'next_cursor of the previous page' })),
    sort: Type.Optional(StringEnum(sortValues, { description: 'A field, or -field for descending' })),
    ...filters,
  });
}

export interface ListSpec {
  /** The select list, e.g. `d.id, d.name, d.created_at`. */
  select: string;
  /** The from clause with its joins, e.g. `devices d left join device_state s on s.device_id = d.id`. */
  from: string;
  /** Filter conditions (ANDed), written with `params.add(…)`. */
  where?: string[];
  params?: SqlParams;
  /** A unique column that breaks ties in the order, e.g. `d.id`. */
  id: string;
  /** Sortable field → SQL expression. The expression must never be null (wrap nullable columns in coalesce). */
  sortable: Record<string, string>;
  /** `field` or `-field`. */
  defaultSort: string;
  /** Count the matching rows (default true). */
  total?: boolean;
  /**
   * A scalar subquery giving the same number as counting the filters' rows, cheaper (a table of counts,
   * docs/design.md, "List totals"); bound on the filters' parameters only.
   */
  totalSql?: string;
}

export interface CursorValue {
  s: string;
  v: string;
  i: string;
}

const SORT_KEY = '__page_sort';
const ID_KEY = '__page_id';
const TOTAL_KEY = '__page_total';

/**
 * Runs the list query for one page: rows in order, total, and the keyset cursor of the next page. With `map`
 * (a repository's row → item that picks its fields by name), each row goes to it as read, instead of first
 * being copied without the page's own columns — a copy of every row that the mapping would make again.
 */
export async function listPage<Row extends object>(db: Queryable, spec: ListSpec, query: ListQuery): Promise<ListResult<Row>>;
export async function listPage<Row extends object, Item>(db: Queryable, spec: ListSpec, query: ListQuery, map: (row: Row) => Item): Promise<ListResult<Item>>;
export async function listPage<Row extends object, Item>(
  db: Queryable, spec: ListSpec, query: ListQuery, map?: (row: Row) => Item,
): Promise<ListResult<Row | Item>> {
  const params = spec.params ?? new SqlParams();
  const limit = Math.min(query.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
  const cursor = query.cursor ? decodeCursor(query.cursor) : null;
  if (cursor && query.sort && query.sort !== cursor.s) {
    throw badRequest('the cursor belongs to another sort order', [{ path: 'cursor', message: `was made for sort=${cursor.s}` }]);
  }
  const sort = cursor?.s ?? query.sort ?? spec.defaultSort;
  const descending = sort.startsWith('-');
  const field = descending ? sort.slice(1) : sort;
  // Own keys only: a cursor or sort naming `constructor` must not find Object.prototype's.
  const sortExpr = Object.hasOwn(spec.sortable, field) ? spec.sortable[field] : undefined;
  if (typeof sortExpr !== 'string') {
    if (cursor) throw invalidCursor();
    throw badRequest(`cannot sort by ${field}`, [{ path: 'sort', message: 'is not a sortable field' }]);
  }

  const filters = [...(spec.where ?? [])];
  const filterParamCount = params.values.length;
  const conditions = [...filters];
  if (cursor) {
    conditions.push(`(${sortExpr}, ${spec.id}) ${descending ? '<' : '>'} (${params.add(cursor.v)}, ${params.add(cursor.i)})`);
  }
  const direction = descending ? 'desc' : 'asc';
  const offset = cursor ? 0 : query.offset ?? 0;
  const counting = spec.total !== false;
  // Bound, not written into the text: the prepared statement below then serves every page.
  const limitParam = params.add(limit + 1);
  const offsetParam = params.add(offset);
  // The count rides along with the page as an uncorrelated subquery (evaluated once, on the filters
  // only): one statement, one round trip, instead of a second query.
  const totalSql = spec.totalSql ?? `(select count(*)::int from ${spec.from} ${whereClause(filters)})`;
  const totalColumn = counting ? `, ${totalSql} as "${TOTAL_KEY}"` : '';
  const pageSql = `select ${spec.select}, (${sortExpr})::text as "${SORT_KEY}", (${spec.id})::text as "${ID_KEY}"${totalColumn}
      from ${spec.from} ${whereClause(conditions)}
     order by ${sortExpr} ${direction}, ${spec.id} ${direction}
     limit ${limitParam} offset ${offsetParam}`;

  const { rows } = await db.query<Row & Record<typeof SORT_KEY | typeof ID_KEY, string> & { [TOTAL_KEY]?: number }>(
    { name: statementName(pageSql), text: pageSql, values: params.values },
  );
  let total: number | null = null;
  if (counting) {
    if (rows.length > 0) total = rows[0]![TOTAL_KEY] ?? 0;
    // An empty first page means nothing matches the filters; past the end (offset, cursor), count apart.
    else if (!cursor && offset === 0) total = 0;
    else {
      const counted = await db.query<{ total: number }>(
        `select ${totalSql} as total`,
        params.values.slice(0, filterParamCount),
      );
      total = counted.rows[0]?.total ?? 0;
    }
  }

  const hasMore = rows.length > limit;
  const pageRows = hasMore ? rows.slice(0, limit) : rows;
  // An uncounted list still knows its total on its last offset page, for free: small result sets
  // then carry a number like every other list, and only the open-ended pages of a big log say null.
  if (total === null && !cursor && !hasMore && (pageRows.length > 0 || offset === 0)) total = offset + pageRows.length;
  const last = pageRows[pageRows.length - 1];
  const nextCursor = hasMore && last ? encodeCursor({ s: sort, v: last[SORT_KEY], i: last[ID_KEY] }) : null;
  const data = map ? pageRows.map((row) => map(row)) : pageRows.map((row) => {
    const { [SORT_KEY]: _sort, [ID_KEY]: _id, [TOTAL_KEY]: _total, ...rest } = row;
    return rest as unknown as Row;
  });
  return { data, meta: { total, limit, offset, next_cursor: nextCursor } };
}

/**
 * Lists are prepared once per connection and reused: planning the joins under row-level security costs
 * the database about as much as running a page. The text varies only with the resource, filters present,
 * sort and page size, so a connection holds a bounded number of them; values stay bound parameters.
 */
const statementNames = new Map<string, string>();
const statementName = (sql: string): string => {
  let name = statementNames.get(sql);
  if (name === undefined) {
    // Hashed once per text: every page of a list would otherwise hash the same text again.
    name = `list_${createHash('sha1').update(sql).digest('base64url')}`;
    // Bounded like the statements themselves; a flood of filter combinations only costs the hash again.
    if (statementNames.size >= 1000) statementNames.clear();
    statementNames.set(sql, name);
  }
  return name;
};

const whereClause = (conditions: string[]) => (conditions.length ? `where ${conditions.map((c) => `(${c})`).join(' and ')}` : '');

/** `next_cursor`: the sort, the sort value and the id of a page's last row, opaque to clients. */
export const encodeCursor = (value: CursorValue) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A `?cursor=` back to its values; anything this API did not return is a 400 naming `cursor`. */
export function decodeCursor(cursor: string): CursorValue {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as CursorValue;
    if (typeof value.s === 'string' && typeof value.v === 'string' && typeof value.i === 'string') return value;
  } catch {
    // falls through to the 400 below
  }
  throw invalidCursor();
}

const invalidCursor = () => badRequest('the cursor is not valid', [{ path: 'cursor', message: 'is not a cursor this API returned' }]);
