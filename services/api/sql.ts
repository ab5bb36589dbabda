/** Bound parameters for a hand-written query: `params.add(value)` returns its `$n`. Values are never concatenated. */
export class SqlParams {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}
