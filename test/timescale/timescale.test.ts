import { afterAll, beforeAll } from 'vitest';
import { createTimescaleDatabase, type TimescaleDatabase } from '../support/timescale.js';
import { describeMigrations } from './schema.js';
import { describeQueries } from './queries.js';

/**
 * The TimescaleDB branch, on PostgreSQL 17 + TimescaleDB 2.23 (PGlite built with TimescaleDB),
 * migrated from empty by the real `fieldops migrate`. One database for both parts: starting PGlite
 * with TimescaleDB and migrating it is most of this file's time.
 */
let tsdb: TimescaleDatabase;

beforeAll(async () => {
  tsdb = await createTimescaleDatabase();
}, 180_000);

afterAll(async () => {
  await tsdb?.close();
});

describeMigrations(() => tsdb);
describeQueries(() => tsdb);
