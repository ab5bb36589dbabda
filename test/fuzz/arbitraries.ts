import fc from 'fast-check';
import { encodeGpsBatch, encodePunch } from '../../ingest/proto.js';

/**
 * Cases per fuzzed surface: 10,000 in `npm test`, `FUZZ_RUNS` for a longer run. A property run sends a
 * group of CASES_PER_RUN cases at once (the server answers them concurrently, many per second), so the
 * number of property runs is the case count divided by that.
 */
export const FUZZ_CASES = Number(process.env.FUZZ_RUNS ?? 10_000);
export const CASES_PER_RUN = 100;
export const FUZZ_PROPERTY_RUNS = Math.max(1, Math.ceil(FUZZ_CASES / CASES_PER_RUN));
/** Time budget of one fuzz file: generous for FUZZ_RUNS, about a minute at the default. */
export const FUZZ_TIMEOUT_MS = Math.max(120_000, FUZZ_CASES * 30);

/** fast-check's settings for a surface: its runs, and the seed named in a failure (FUZZ_SEED repeats one). */
export const fuzzParameters = (): fc.Parameters<unknown> => ({
  numRuns: FUZZ_PROPERTY_RUNS,
  ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}),
  endOnFailure: true,
});

/** Any text, control and NUL characters, lone surrogates and astral planes included. */
export const anyText = (maxLength = 40) => fc.string({ unit: 'binary', maxLength });

/** Numbers a client may send for a number: the usual, the edges and the absurd. */
export const anyNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, 1, -1, 90.0000001, -180.5, 2 ** 31, 2 ** 53, -(2 ** 63), 1e308, Number.MIN_VALUE),
);

/** A value where a field is expected: right-ish or wrong in kind. */
export const anyFieldValue: fc.Arbitrary<unknown> = fc.oneof(
  anyNumber,
  anyText(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('', '1', 'NaN', 'Infinity', '-0', '1e999', '0x10', '2025-13-45T25:61:61Z', '\u0000'),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(anyText(8), fc.integer(), { maxKeys: 3 }),
);

/** A fix whose fields are each right or wrong. */
const anyFix = fc.record({
  ts_ms: fc.oneof(anyFieldValue, fc.integer({ min: 0, max: 4_102_444_800_000 })),
  lat: fc.oneof(anyFieldValue, fc.double({ min: -91, max: 91 })),
  lon: fc.oneof(anyFieldValue, fc.double({ min: -181, max: 181 })),
  speed_mps: anyFieldValue,
  heading_deg: anyFieldValue,
  accuracy_m: anyFieldValue,
  altitude_m: anyFieldValue,
  battery_pct: anyFieldValue,
  seq: anyFieldValue,
}, { requiredKeys: [] });

/** A punch whose fields are each right or wrong. */
const anyPunch = fc.record({
  ts_ms: anyFieldValue,
  employee_id: fc.oneof(anyFieldValue, fc.uuid()),
  kind: fc.oneof(anyFieldValue, fc.constantFrom('in', 'out', 'IN', 'PUNCH_KIND_OUT', 3)),
  lat: anyFieldValue,
  lon: anyFieldValue,
  accuracy_m: anyFieldValue,
}, { requiredKeys: [] });

const utf8 = (value: unknown) => Buffer.from(JSON.stringify(value) ?? 'undefined');

/** Valid protobuf batches with bytes flipped, cut short or spliced with garbage. */
const mangledProtobuf = fc.tuple(
  fc.array(fc.record({ ts_ms: fc.integer({ min: 0, max: 2 ** 42 }), lat: fc.double(), lon: fc.double(), seq: fc.nat() }), { maxLength: 5 }),
  fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
  fc.nat(),
  fc.uint8Array({ maxLength: 16 }),
).map(([fixes, flips, cut, tail]) => {
  const bytes = Buffer.from(encodeGpsBatch({ fixes }));
  for (const [at, value] of flips) if (bytes.length) bytes[at % bytes.length] = value;
  return Buffer.concat([bytes.subarray(0, bytes.length ? cut % (bytes.length + 1) : 0), tail]);
});

/** What a broken, buggy or hostile device might send as a telemetry payload (any topic, either encoding). */
export const anyPayload: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
  fc.jsonValue({ maxDepth: 3 }).map(utf8),
  anyFix.map(utf8),
  fc.record({ fixes: fc.oneof(fc.array(anyFix, { maxLength: 8 }), anyFieldValue) }, { requiredKeys: [] }).map(utf8),
  anyPunch.map(utf8),
  anyPunch.map((p) => Buffer.from(encodePunch(protobufSafe(p)))),
  mangledProtobuf,
  anyText(200).map((t) => Buffer.from(t)),
);

/** The protobuf encoder throws on values of the wrong kind (that is the client's library, not our server): keep the ones it takes. */
function protobufSafe(punch: Record<string, unknown>): Record<string, never> {
  const safe: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(punch)) {
    if (key === 'employee_id' ? typeof value === 'string' : typeof value === 'number' && Number.isFinite(value)) safe[key] = value;
  }
  return safe as Record<string, never>;
}

/**
 * A fix every check accepts: within ±90/±180, a past time (distinct per call), finite values at full double
 * precision (the longest JSON a valid fix takes: a 500-fix JSON batch must be accepted whatever its bytes).
 */
export function validFix(tsMs: number): { ts_ms: number; lat: number; lon: number; speed_mps: number; heading_deg: number; accuracy_m: number; altitude_m: number; battery_pct: number; seq: number } {
  return {
    ts_ms: tsMs, lat: -45.12345678901234 - (tsMs % 1000) / 1e7, lon: -179.1234567890123, speed_mps: 2.123456789012345,
    heading_deg: 359.1234567890123, accuracy_m: 4.987654321012345, altitude_m: -1234.567890123456, battery_pct: 99.12345678901234, seq: 4_294_967_295,
  };
}

/** Distinct past times for the valid fixes sent alongside the fuzz, a millisecond apart. */
export class FixClock {
  private next = Date.now() - 3 * 3600_000;
  take(n = 1): number[] {
    const out = Array.from({ length: n }, (_, i) => this.next + i);
    this.next += n;
    return out;
  }
}
