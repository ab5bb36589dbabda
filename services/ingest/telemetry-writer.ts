import { PgError, pgErrorCode, type Pool } from '../shared/db.js';
import { positionsCopyBinary } from './copy-binary.js';
import { PipelinedCopy } from './pipelined-copy.js';
import type { PositionColumns, PunchRow } from '../../ingest/rows.js';

/**
 * Positions go in with `COPY`: PostgreSQL then writes the batch with multi-row heap inserts, about three times
 * cheaper per row than `INSERT … SELECT FROM unnest` (bench/ingest.ts: raw COPY ≈ 130k rows/s here, the
 * unnest insert ≈ 45k). COPY has no ON CONFLICT, so a batch holding a fix already stored (a retransmission)
 * fails whole on the unique key and is written again through the deduplicating statement below. COPY has no
 * RETURNING either: the ids come from the table's identity sequence, taken a block at a time (IdBlocks).
 *
 * The deduplicating statement has every column as one array parameter, so it has 12 parameters whatever the
 * batch size (PostgreSQL's 65,535-parameter limit never applies). Its INSERT … ON CONFLICT DO NOTHING
 * RETURNING runs inside a security-definer function (migration 003; migration 010's also writes the batch's provisional
 * stream gap in the same statement): RETURNING needs SELECT on the table,
 * which the ingest role must not have. A retransmitted fix is stored once; the returned ids name the rows
 * that are new, the ones the stream still has to carry.
 */
const COPY_POSITIONS = 'copy positions (id, tenant_id, device_id, asset_id, ts, lat, lon, speed_mps, heading_deg, accuracy_m, '
  + 'altitude_m, battery_pct, seq) from stdin with (format binary)';

const INSERT_POSITIONS = 'select id, device_id, ts_ms from ingest_insert_positions_marked($1, $2, $3, $4::uuid[], $5::uuid[], $6::uuid[], '
  + '$7::int8[], $8::float8[], $9::float8[], $10::float4[], $11::float4[], $12::float4[], $13::float4[], $14::float4[], $15::int8[])';

const INSERT_PUNCHES = 'select id, device_id, ts_ms from ingest_insert_punches_marked($1, $2, $3, $4::uuid[], $5::uuid[], $6::uuid[], '
  + '$7::int8[], $8::text[], $9::text[], $10::float8[], $11::float8[], $12::float4[])';

/**
 * The COPY path's provisional gap goes in the same simple-query message as the COPY: the statements of one
 * message run as one implicit transaction, so the gap commits with the rows, and it costs no round trip of
 * its own (a separate statement before each COPY halved single-fix throughput on the loaded bench machine).
 * Simple queries take no parameters: the values are integers this process made, never client input.
 */
function markedCopy(firstId: number, lastId: number, marker: GapMarker): string {
  const values = [firstId, lastId, marker.runId, marker.cutKey, MARKER_TTL_S];
  if (!values.every(Number.isSafeInteger)) throw new Error('stream gap marker values must be integers');
  return 'insert into stream_gaps (stream, first_id, last_id, run_id, cut_key, expires_at) '
    + `values ('positions', ${firstId}, ${lastId}, ${marker.runId}, ${marker.cutKey}, now() + interval '${MARKER_TTL_S} seconds'); ${COPY_POSITIONS}`;
}

/**
 * The provisional stream gap committed with every batch (migration 010): the process run and the batch's cut
 * key name it, so that the stream publisher deletes it once the rows are appended. Left behind by a process
 * killed before the append, it is replayed: at once by the next run of that node, by any node once it has
 * been there `MARKER_TTL_S` (longer than an append may take: 5 s timeout, then the gap is made permanent).
 */
export interface GapMarker {
  runId: number;
  cutKey: number;
}

export const MARKER_TTL_S = 15;

type ReturnedRow = [id: string, deviceId: string, tsMs: string];

/** The identity sequence of `positions` steps by this much (migration 001): one nextval names this many rows. */
const ID_BLOCK = 1000;

/**
 * Blocks fetched per look-up: a batch of ~1,600 rows would otherwise cost a round trip of its own before every
 * COPY. Ids left unused when the process stops are a gap in the sequence, which nothing relies on.
 */
const PREFETCH_BLOCKS = 16;

/** Position ids, a block of the identity sequence at a time; blocks of concurrent writers never overlap. */
export class IdBlocks {
  private next = 0;
  private end = 0;
  private readonly spare: number[] = []; // bases of fetched blocks not yet started

  async take(pool: Pool, count: number): Promise<number[]> {
    const ids: number[] = [];
    for (;;) {
      while (ids.length < count && this.next < this.end) ids.push(this.next++);
      if (ids.length === count) return ids;
      const base = this.spare.shift();
      if (base !== undefined) {
        this.next = base;
        this.end = base + ID_BLOCK;
        continue;
      }
      const blocks = Math.max(PREFETCH_BLOCKS, Math.ceil((count - ids.length) / ID_BLOCK));
      const { rows } = await pool.query<[string]>({
        name: 'fieldops_ingest_id_blocks',
        text: "select nextval('positions_id_seq') from generate_series(1, $1)",
        rowMode: 'array',
        values: [blocks],
      });
      for (const [fetched] of rows) this.spare.push(Number(fetched));
    }
  }
}

/**
 * Inserts the positions; returns, per input row, the new row's id or null when it was already stored.
 * Without `useCopy` (the embedded database: COPY FROM STDIN loses protocol sync through its socket)
 * every batch takes the deduplicating `INSERT … SELECT FROM unnest` statement.
 */
export async function insertPositions(pool: Pool, ids: IdBlocks, rows: PositionColumns, marker: GapMarker, useCopy = true): Promise<(string | null)[]> {
  if (!useCopy) return insertPositionsOnce(pool, rows, marker);
  const rowIds = await ids.take(pool, rows.length);
  try {
    await copyPositions(pool, rowIds, rows, marker);
    return rowIds.map(String);
  } catch (err) {
    if (pgErrorCode(err) !== PgError.uniqueViolation) throw err;
    return insertPositionsOnce(pool, rows, marker);
  }
}

/** COPY cannot return ids, but they are known beforehand: the provisional gap names them (markedCopy). */
async function copyPositions(pool: Pool, ids: number[], rows: PositionColumns, marker: GapMarker): Promise<void> {
  let firstId = Infinity;
  let lastId = -Infinity;
  for (const id of ids) {
    if (id < firstId) firstId = id;
    if (id > lastId) lastId = id;
  }
  const client = await pool.connect();
  let broken: Error | undefined;
  // A checked-out client has no error listener (the pool's returns on release), and pg emits a dying connection's
  // socket errors (EPIPE while COPY data is still being written) on the client as well as failing the COPY.
  const onConnectionError = (err: Error) => { broken = err; };
  client.on('error', onConnectionError);
  try {
    const copy = new PipelinedCopy(markedCopy(firstId, lastId, marker), positionsCopyBinary(ids, rows));
    client.query(copy);
    await copy.done;
  } catch (err) {
    if (pgErrorCode(err) === undefined) broken = err as Error; // a connection error: drop the client
    throw err;
  } finally {
    client.off('error', onConnectionError);
    client.release(broken);
  }
}

/** The deduplicating write: ON CONFLICT DO NOTHING, returning the ids of the rows that were new. */
async function insertPositionsOnce(pool: Pool, rows: PositionColumns, marker: GapMarker): Promise<(string | null)[]> {
  const result = await pool.query<ReturnedRow>({
    name: 'fieldops_ingest_positions',
    text: INSERT_POSITIONS,
    rowMode: 'array',
    values: [
      marker.runId, marker.cutKey, MARKER_TTL_S,
      textArray(rows.tenantId), textArray(rows.deviceId), nullableArray(rows.assetId), numberArray(rows.tsMs),
      numberArray(rows.lat), numberArray(rows.lon), nullableArray(rows.speedMps), nullableArray(rows.headingDeg),
      nullableArray(rows.accuracyM), nullableArray(rows.altitudeM), nullableArray(rows.batteryPct), nullableArray(rows.seq),
    ],
  });
  return matchReturned(result.rows, rows.deviceId, rows.tsMs);
}

export async function insertPunches(pool: Pool, rows: PunchRow[], marker: GapMarker): Promise<(string | null)[]> {
  const result = await pool.query<ReturnedRow>({
    name: 'fieldops_ingest_punches',
    text: INSERT_PUNCHES,
    rowMode: 'array',
    values: [
      marker.runId, marker.cutKey, MARKER_TTL_S,
      rows.map((r) => r.tenantId), rows.map((r) => r.deviceId), rows.map((r) => r.siteId), rows.map((r) => r.tsMs),
      rows.map((r) => r.employeeRef), rows.map((r) => r.kind), rows.map((r) => r.lat), rows.map((r) => r.lon),
      rows.map((r) => r.accuracyM),
    ],
  });
  return matchReturned(result.rows, rows.map((r) => r.deviceId), rows.map((r) => r.tsMs));
}

/**
 * The ids of rows already stored under these keys (null where none is): after a retry whose first attempt may
 * have committed unseen, the rows it finds in place are this batch's own and still need their stream entries.
 */
export async function existingPositionIds(pool: Pool, deviceIds: string[], tsMs: number[]): Promise<(string | null)[]> {
  const result = await pool.query<ReturnedRow>({
    text: 'select id, device_id, ts_ms from ingest_position_ids($1::uuid[], $2::int8[])',
    rowMode: 'array',
    values: [textArray(deviceIds), numberArray(tsMs)],
  });
  return matchByKey(result.rows, deviceIds, tsMs);
}

export async function existingPunchIds(pool: Pool, deviceIds: string[], tsMs: number[]): Promise<(string | null)[]> {
  const result = await pool.query<ReturnedRow>({
    text: 'select id, device_id, ts_ms from ingest_punch_ids($1::uuid[], $2::int8[])',
    rowMode: 'array',
    values: [textArray(deviceIds), numberArray(tsMs)],
  });
  return matchByKey(result.rows, deviceIds, tsMs);
}

/**
 * RETURNING lists the inserted rows in the order the SELECT fed them, skipping conflicts; walking both lists
 * together maps each back to its input without a hash table. Should that order ever differ, a lookup by key
 * (device, ts) takes over, so correctness never rests on it.
 */
function matchReturned(returned: ReturnedRow[], deviceIds: string[], tsMs: number[]): (string | null)[] {
  const ids: (string | null)[] = new Array(deviceIds.length).fill(null);
  let j = 0;
  for (let i = 0; i < returned.length; i++) {
    const [id, deviceId, ts] = returned[i]!;
    while (j < deviceIds.length && !(deviceIds[j] === deviceId && String(tsMs[j]) === ts)) j++;
    if (j === deviceIds.length) return matchByKey(returned, deviceIds, tsMs);
    ids[j++] = id;
  }
  return ids;
}

function matchByKey(returned: ReturnedRow[], deviceIds: string[], tsMs: number[]): (string | null)[] {
  const byKey = new Map<string, string>();
  for (const [id, deviceId, ts] of returned) byKey.set(`${deviceId}|${ts}`, id);
  return deviceIds.map((d, i) => {
    const key = `${d}|${tsMs[i]}`;
    const id = byKey.get(key) ?? null;
    byKey.delete(key); // a fix sent twice in one batch is new once
    return id;
  });
}

// Array literals built directly: uuids and numbers need no quoting, and pg's generic array serializer
// (quoting and escaping every element) costs more than the statement itself at these rates.
function textArray(values: string[]): string {
  return `{${values.join(',')}}`;
}

function numberArray(values: number[]): string {
  return `{${values.join(',')}}`;
}

function nullableArray(values: (string | number | null)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ',';
    out += v === null ? 'NULL' : v;
  }
  return `${out}}`;
}
