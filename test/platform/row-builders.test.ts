import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAsTenant, withTenant } from '../../services/shared/db.js';
import { rowBuilderFor, type ColumnDescription } from '../../services/shared/row-builders.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { createOrg, type TestOrg } from '../support/factories.js';

/**
 * Rows built by services/shared/row-builders.ts are pg's rows: the same keys in the same order and the
 * same values, on made-up columns and on what the server answers through the tenant path.
 */
const pgRow = (columns: ColumnDescription[], values: (string | null)[]) => {
  const result = new (pg.Result as unknown as new (rowMode: undefined, types: unknown) => unknown)(undefined, pg.types) as { addFields(c: unknown): void; parseRow(v: unknown): unknown };
  result.addFields(columns);
  return result.parseRow(values);
};

const col = (name: string, dataTypeID: number): ColumnDescription => ({ name, dataTypeID, format: 'text' });

/** The builder once the text is seen again (the first sighting is left to pg). */
const builderFor = (text: string, columns: ColumnDescription[]) => {
  rowBuilderFor(text, columns, pg.types);
  return rowBuilderFor(text, columns, pg.types);
};

describe('rowBuilderFor', () => {
  it('builds the row pg builds', () => {
    const columns = [col('id', 2950), col('n', 23), col('big', 20), col('at', 1184), col('doc', 3802), col('flag', 16), col('n', 25), col('1', 25), col('a"b\\c', 25)];
    const values = ['0b6f8b6e-1a2b-4c3d-8e9f-0123456789ab', '42', '9007199254740993', '2026-11-30 16:09:13.465+00', '{"a":[1]}', 't', 'last', 'one', null];
    const sut = builderFor('select test 1', columns)!;
    const row = sut(values);
    expect(row).toEqual(pgRow(columns, values));
    expect(Object.keys(row)).toEqual(Object.keys(pgRow(columns, values) as object));
  });

  it('leaves a text to pg the first time, and makes its builder the next', () => {
    expect(rowBuilderFor('select test 5', [col('a', 25)], pg.types)).toBeNull();
    expect(rowBuilderFor('select test 5', [col('a', 25)], pg.types)).toBeTypeOf('function');
  });

  it('makes the builder again when the same text describes other columns', () => {
    const first = builderFor('select test 2', [col('a', 25)])!;
    expect(rowBuilderFor('select test 2', [col('a', 25)], pg.types)).toBe(first);
    const second = rowBuilderFor('select test 2', [col('a', 23)], pg.types)!;
    expect(second).not.toBe(first);
    expect(second(['7'])).toEqual({ a: 7 });
  });

  it('leaves binary columns and __proto__ to pg', () => {
    expect(builderFor('select test 3', [{ name: 'b', dataTypeID: 17, format: 'binary' }])).toBeNull();
    expect(builderFor('select test 4', [col('__proto__', 25)])).toBeNull();
  });
});

describe('rows through the tenant path', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let tenant: TestOrg;
  beforeAll(async () => {
    db = await createTestDatabase();
    pool = new pg.Pool({ connectionString: db.config.serviceDatabaseUrls.api, max: 1 });
    tenant = await createOrg(db.owner);
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  const SQL = `select 1::int as n, null::text as missing, now() as at, '{"k": 1}'::jsonb as doc, array[1, 2] as list,
      '2026-11-30'::date as day, 12.5::numeric as amount, 'x' as n2, 2::int as n`;

  it('reads (one round trip) and transactions answer the rows a plain query does', async () => {
    const plain = await db.owner.query({ text: SQL.replace('now()', "'2026-11-30 16:09:13.465+00'::timestamptz") });
    // Twice each: pg's rows the first time, the builder's after.
    for (const run of [readAsTenant, withTenant, readAsTenant, withTenant]) {
      const { rows, fields } = await run(pool, tenant.id, (q) => q.query(SQL.replace('now()', "'2026-11-30 16:09:13.465+00'::timestamptz")));
      expect(rows).toEqual(plain.rows);
      expect(Object.keys(rows[0]!)).toEqual(Object.keys(plain.rows[0]!));
      expect(fields.map((f) => f.name)).toEqual(plain.fields.map((f) => f.name));
    }
  });

  it('a value no parser accepts fails the statement, and the connection serves the next one', async () => {
    // An invalid JSON text cannot come from the server; a parser that throws stands in for it.
    const types = pg.types as unknown as { getTypeParser(oid: number, format?: string): (t: string) => unknown; setTypeParser(oid: number, f: (t: string) => unknown): void };
    const original = types.getTypeParser(1700, 'text');
    types.setTypeParser(1700, () => { throw new Error('unparseable'); });
    try {
      for (let i = 0; i < 2; i++) {
        await expect(readAsTenant(pool, tenant.id, (q) => q.query('select 1.5::numeric as x, 77 as y'))).rejects.toThrow('unparseable');
      }
    } finally {
      types.setTypeParser(1700, original);
    }
    const { rows } = await readAsTenant(pool, tenant.id, (q) => q.query('select 2 as y'));
    expect(rows).toEqual([{ y: 2 }]);
  });
});
