/** Bound parameters for a hand-written query: `params.add(value)` returns its `$n`. Values are never concatenated. */
export class SqlParams {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/**
 * `column = $n` for each writable column present in `changes` (undefined means "leave as it is", null
 * clears). Column names come from the caller's fixed list, never from the request; values are bound,
 * JSON columns as JSON text.
 */
export function assignments<T extends object>(params: SqlParams, changes: T, writable: readonly (keyof T & string)[], jsonColumns: readonly string[] = []): string[] {
  const sets: string[] = [];
  for (const column of writable) {
    const value = changes[column];
    if (value === undefined) continue;
    sets.push(`${column} = ${params.add(jsonColumns.includes(column) && value !== null ? JSON.stringify(value) : value)}`);
  }
  return sets;
}

/** A `%…%` pattern matching `text` literally, for `ilike` (its wildcards escaped). */
export const containsPattern = (text: string): string => `%${text.replace(/[\\%_]/g, '\\$&')}%`;
