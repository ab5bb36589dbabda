import pg from 'pg';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { timestamptzParser } from '../../services/shared/timestamp-parser.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * The API's timestamptz parser (services/shared/timestamp-parser.ts) against pg's own (postgres-date):
 * the same Date, or the same answer, for whatever text it is given — it only reads the usual form
 * faster and hands the rest over.
 */
// pg's own timestamptz parser, by way of the timestamp one (the same function; db.ts replaces only the former).
const pgParser = pg.types.getTypeParser(pg.types.builtins.TIMESTAMP, 'text') as (text: string) => unknown;
const sut = timestamptzParser(pgParser);

const same = (text: string) => {
  const expected = pgParser(text);
  const actual = sut(text);
  if (expected instanceof Date) {
    expect(actual).toBeInstanceOf(Date);
    expect((actual as Date).getTime(), text).toEqual(expected.getTime());
  } else {
    expect(actual, text).toEqual(expected);
  }
};

describe('timestamptzParser', () => {
  it('gives the Date pg gives on the usual forms', () => {
    for (const text of [
      '2026-11-30 16:09:13+00', '2026-11-30 16:09:13.465+00', '2026-11-30 16:09:13.465123+00', '2026-11-30 16:09:13.1+00',
      '2026-01-01 00:00:00-05', '2026-06-30 23:59:59.999999+05:30', '1970-01-01 00:00:00+00', '0100-03-01 12:00:00+00',
      '2026-11-30 16:09:13.57+00', '2026-11-30 16:09:13.285+00', '9999-12-31 23:59:59.999999+14',
    ]) same(text);
  });

  it('hands everything else to pg', () => {
    for (const text of [
      'infinity', '-infinity', '0044-03-15 12:00:00+00 BC', '12026-11-30 16:09:13+00', '0099-01-01 00:00:00+00',
      '2026-11-30 16:09:13+05:30:15', '2026-11-30 16:09:13', '2026-11-30T16:09:13Z', '2026-11-30 16:09:13.+00', '', 'garbage',
    ]) same(text);
  });

  it('agrees with pg on any timestamp in the usual form', () => {
    fc.assert(fc.property(
      fc.integer({ min: 100, max: 9999 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 28 }),
      fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 59 }),
      fc.option(fc.stringMatching(/^[0-9]{1,6}$/), { nil: undefined }),
      fc.constantFrom('+00', '-05', '+05:30', '-09:30', '+14'),
      (year, month, day, hour, minute, second, fraction, offset) => {
        const pad = (n: number, width = 2) => String(n).padStart(width, '0');
        same(`${pad(year, 4)}-${pad(month)}-${pad(day)} ${pad(hour)}:${pad(minute)}:${pad(second)}${fraction ? `.${fraction}` : ''}${offset}`);
      },
    ), { numRuns: 2000 });
  });
});

describe('timestamptz from the server', () => {
  let db: TestDatabase;
  beforeAll(async () => { db = await createTestDatabase(); });
  afterAll(async () => { await db?.drop(); });

  it('reads what PostgreSQL writes, in UTC and in another zone', async () => {
    for (const zone of ['UTC', 'Asia/Kolkata', 'America/St_Johns']) {
      const { rows } = await db.owner.query<{ t: string }>(
        `select set_config('timezone', $1, false), t::text as t from (values (now()), ('2026-03-29 01:30:00.123456+00'::timestamptz),
           ('0500-01-01 00:00:00+00'::timestamptz), ('infinity'::timestamptz)) v(t)`,
        [zone],
      );
      for (const { t } of rows) same(t);
    }
  });
});
