import fc from 'fast-check';
import { anyFieldValue, anyNumber, anyText } from './arbitraries.js';

/** The parts of an OpenAPI 3 document (as @fastify/swagger writes it) that requests are made from. */
export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
}
interface OpenApiParameter { name: string; in: 'path' | 'query' | 'header'; schema?: JsonSchema; required?: boolean }
interface OpenApiOperation {
  parameters?: OpenApiParameter[];
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}
export interface JsonSchema {
  type?: string | string[];
  format?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
}

export interface FuzzRequest {
  method: string;
  /** The path template, for the failure message. */
  route: string;
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

/**
 * Values for a schema: mostly of its shape (so that requests get past validation and reach the handlers and
 * the database), at every level sometimes anything at all.
 */
export function fromSchema(schema: JsonSchema | undefined, depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 4) return anyFieldValue;
  return fc.oneof({ weight: 4, arbitrary: shaped(schema, depth) }, { weight: 1, arbitrary: anyFieldValue });
}

function shaped(schema: JsonSchema, depth: number): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const members = schema.anyOf ?? schema.oneOf;
  if (members?.length) return fc.oneof(...members.map((m) => fromSchema(m, depth + 1)));
  if (schema.allOf?.length) return fromSchema(Object.assign({}, ...schema.allOf) as JsonSchema, depth + 1);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string': return stringOf(schema);
    case 'integer': return fc.oneof(fc.integer({ min: schema.minimum ?? -1000, max: schema.maximum ?? 1_000_000 }), fc.constantFrom(0, -1, 2 ** 31, 2 ** 53 + 1));
    case 'number': return fc.oneof(fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e9, noNaN: true }), anyNumber);
    case 'boolean': return fc.boolean();
    case 'null': return fc.constant(null);
    case 'array': return fc.array(fromSchema(schema.items, depth + 1), { maxLength: Math.min(schema.maxItems ?? 4, 4) });
    case 'object': return objectOf(schema, depth);
    default: return anyFieldValue;
  }
}

function stringOf(schema: JsonSchema): fc.Arbitrary<string> {
  const text = fc.oneof(
    { weight: 3, arbitrary: fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 30, 30) }) },
    { weight: 1, arbitrary: anyText(40) },
  );
  switch (schema.format) {
    case 'uuid': return fc.oneof(fc.uuid(), fc.uuid().map((u) => u.toUpperCase()), text);
    case 'date-time': return fc.oneof(dateTimes, text);
    case 'date': return fc.oneof(dateTimes.map((d) => d.slice(0, 10)), text);
    case 'email': return fc.oneof(fc.emailAddress(), text);
    case 'uri': return fc.oneof(fc.webUrl(), text);
    default: return text;
  }
}

/** Times PostgreSQL takes and times it does not (year 0, 10000, infinity), as clients write them. */
const dateTimes = fc.oneof(
  fc.date({ min: new Date('1900-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom('0000-01-01T00:00:00Z', '10000-01-01T00:00:00Z', 'infinity', '-infinity', '2025-02-30T00:00:00Z', '2025-01-01T24:00:00Z',
    '2025-01-01', '2025-01-01T00:00:00+25:00', '1970-01-01T00:00:00.0000001Z'),
);

function objectOf(schema: JsonSchema, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const props = schema.properties ?? {};
  const record = fc.record(Object.fromEntries(Object.entries(props).map(([k, s]) => [k, fromSchema(s, depth + 1)])), { requiredKeys: [] })
    .chain((value) => {
      // Usually with its required keys (else validation answers before anything else runs).
      const required = (schema.required ?? []).filter((k) => !(k in value));
      if (required.length === 0) return fc.constant(value);
      return fc.oneof(
        { weight: 4, arbitrary: fc.tuple(...required.map((k) => shaped(props[k] ?? {}, depth + 1))).map((vals) => ({ ...value, ...Object.fromEntries(required.map((k, i) => [k, vals[i]])) })) },
        { weight: 1, arbitrary: fc.constant(value) },
      );
    });
  return fc.tuple(record, fc.dictionary(anyText(10), anyFieldValue, { maxKeys: 2 })).map(([r, extra]) => ({ ...extra, ...r }));
}

/** Every operation of the document, except the document and its UI. */
export function operationsOf(doc: OpenApiDocument): { method: string; path: string; op: OpenApiOperation }[] {
  const out: { method: string; path: string; op: OpenApiOperation }[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    if (path.startsWith('/v1/docs') || path === '/v1/openapi.json') continue;
    for (const [method, op] of Object.entries(methods)) {
      if (['get', 'post', 'put', 'patch', 'delete'].includes(method)) out.push({ method: method.toUpperCase(), path, op });
    }
  }
  return out;
}

/** A request to one operation: its path parameters, a random set of its query parameters, a body of its schema or anything. */
export function requestFor(method: string, path: string, op: OpenApiOperation, knownIds: string[]): fc.Arbitrary<FuzzRequest> {
  const params = op.parameters ?? [];
  const pathParams = params.filter((p) => p.in === 'path');
  const queryParams = params.filter((p) => p.in === 'query');
  const bodySchema = op.requestBody?.content?.['application/json']?.schema;
  const idLike = fc.oneof(fc.constantFrom(...knownIds), fc.uuid(), anyText(40), fc.constantFrom('constructor', '__proto__', '0', '-1', '%00', '..'));
  return fc.record({
    pathValues: fc.tuple(...pathParams.map((p) => fc.oneof(idLike, fromSchema(p.schema).map(asText)))),
    query: fc.tuple(...queryParams.map((p) => fc.option(fc.oneof(fromSchema(p.schema).map(asText), anyText(30)), { freq: 2 }))),
    extraQuery: fc.option(fc.tuple(anyText(10), anyText(20)), { freq: 8 }),
    body: bodySchema ? fc.oneof({ weight: 5, arbitrary: fromSchema(bodySchema).map((b) => JSON.stringify(b) ?? 'null') }, { weight: 1, arbitrary: anyText(100) }) : fc.option(anyText(50), { freq: 4 }),
    contentType: fc.oneof({ weight: 8, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', '') }),
    ifMatch: fc.option(fc.oneof(fc.constantFrom('"1"', '*', 'W/"2"'), anyText(10)), { freq: 8 }),
    idempotencyKey: fc.option(anyText(40), { freq: 8 }),
  }).map(({ pathValues, query, extraQuery, body, contentType, ifMatch, idempotencyKey }) => {
    let url = path;
    pathParams.forEach((p, i) => { url = url.replace(`{${p.name}}`, encodeURIComponent(pathValues[i]!)); });
    const search = new URLSearchParams();
    queryParams.forEach((p, i) => { if (query[i] !== null) search.append(p.name, query[i]!); });
    if (extraQuery) search.append(extraQuery[0], extraQuery[1]);
    const qs = search.toString();
    const headers: Record<string, string> = {};
    if (contentType) headers['content-type'] = contentType;
    if (ifMatch !== null && isHeaderValue(ifMatch)) headers['if-match'] = ifMatch;
    if (idempotencyKey !== null && isHeaderValue(idempotencyKey)) headers['idempotency-key'] = idempotencyKey;
    return { method, route: `${method} ${path}`, url: qs ? `${url}?${qs}` : url, headers, payload: body ?? undefined };
  });
}

/** A value as a client puts it in a path or query: strings as they are, anything else as JSON. */
const asText = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value) ?? 'undefined');

/** HTTP header values are visible ASCII and tabs/spaces (and obs-text): other bytes never leave a client. */
const isHeaderValue = (value: string) => /^[\t\x20-\x7e]*$/.test(value);
