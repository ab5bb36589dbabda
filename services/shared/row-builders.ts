/** A column as the server describes it in a RowDescription (pg-protocol's field). */
export interface ColumnDescription {
  name: string;
  dataTypeID: number;
  format: string;
}

/** Text values of one DataRow, in column order (null for SQL null). */
export type RowBuilder = (values: (string | null)[]) => Record<string, unknown>;

interface TypeParsers {
  getTypeParser(oid: number, format?: string): (text: string) => unknown;
}

interface Built {
  columns: ColumnDescription[];
  build: RowBuilder;
}

/**
 * Row objects for a statement's columns, built by a function made once per statement text (docs/design.md,
 * "Cost of a request"). pg sets every result up anew — a parser look-up per column and a template object
 * copied into each row — which costs the API more per GET than anything else it does with the answer
 * (≈ 7 µs for a work order's 25 columns, then ≈ 1.5 µs a row); an object literal with the columns' names
 * costs ≈ 0.15 µs a row. The rows are the same as pg's: the same keys in the same order, null for null,
 * each value through the type parser pg would use (read when the function is made: the process sets its
 * parsers once, at start, in db.ts). The function is cached by statement text and used only while the
 * server describes the same columns (after a migration it is made again). A text is left to pg the first
 * time it is seen: making the function costs more than pg's set-up, and is only worth it for a text that
 * comes again (a statement whose text varies per request would otherwise make one each time).
 *
 * Null when pg's own path must do it: binary columns, or a column named `__proto__` (in a literal it would
 * set the prototype instead).
 */
export function rowBuilderFor(text: string, columns: ColumnDescription[], types: TypeParsers): RowBuilder | null {
  const cached = builders.get(text);
  if (cached && sameColumns(cached.columns, columns)) return cached.build;
  if (!cached && !seenOnce.has(text)) {
    if (seenOnce.size >= MAX_CACHED) seenOnce.clear();
    seenOnce.add(text);
    return null;
  }
  if (columns.some((c) => c.format !== 'text' || c.name === '__proto__')) return null;
  const parsers = columns.map((c) => types.getTypeParser(c.dataTypeID, 'text'));
  // Names are written as JSON string literals and values are never part of the code, so no text of a
  // row or of a client can change what the function does.
  const properties = columns.map((c, i) => `${JSON.stringify(c.name)}: (v = d[${i}]) === null ? null : p${i}(v)`);
  const make = new Function(
    'parsers',
    `${parsers.map((_, i) => `const p${i} = parsers[${i}];`).join('\n')}
     return function buildRow(d) { let v; return { ${properties.join(',\n')} }; };`,
  ) as (parsers: ((text: string) => unknown)[]) => RowBuilder;
  const build = make(parsers);
  // Statement texts are a bounded set in this code base; a flood of distinct ones only costs making them again.
  if (builders.size >= MAX_CACHED) builders.clear();
  builders.set(text, { columns: columns.map(({ name, dataTypeID, format }) => ({ name, dataTypeID, format })), build });
  return build;
}

const MAX_CACHED = 2000;
const builders = new Map<string, Built>();
/** Texts seen once, not yet given a function. */
const seenOnce = new Set<string>();

function sameColumns(a: ColumnDescription[], b: ColumnDescription[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.name !== y.name || x.dataTypeID !== y.dataTypeID || x.format !== y.format) return false;
  }
  return true;
}
