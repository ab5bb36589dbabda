import { Type, type Static, type TSchema } from '@fastify/type-provider-typebox';
import type { ErrorBody } from '../shared/contracts/errors.js';

/** Building blocks for route schemas, so that every resource documents the same things the same way. */

export const Uuid = (options: { description?: string } = {}) => Type.String({ format: 'uuid', ...options });

/** Times are ISO 8601 strings; handlers may return the `Date` that pg gives (the serializer formats it). */
export const Timestamp = (options: { description?: string } = {}) =>
  Type.Unsafe<Date | string>({ type: 'string', format: 'date-time', ...options });

export const NullableTimestamp = (options: { description?: string } = {}) =>
  Type.Unsafe<Date | string | null>({ type: 'string', format: 'date-time', nullable: true, ...options });

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** The object's version: bumped by every change, answered as the ETag `"<version>"`, compared with If-Match. */
export const Version = Type.Integer({ minimum: 1, description: 'Bumped by every change; the ETag is `"<version>"`' });

/** `/:id` with a uuid: anything else is answered 404 like a missing object. */
export const IdParams = Type.Object({ id: Uuid() });

/** `{"data": item}`, the single-object envelope. */
export const dataOf = <T extends TSchema>(item: T) => Type.Object({ data: item });

export const NoContent = Type.Null({ description: 'No content' });

/** A string out of a fixed set: `{"type":"string","enum":[…]}`, which OpenAPI generators turn into enums. */
export const StringEnum = <const T extends readonly string[]>(values: T, options: { description?: string } = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

/** The error set's body (services/shared/contracts/errors.ts) as a schema, for the OpenAPI document. */
export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      request_id: Type.String(),
      issues: Type.Array(Type.Object({ path: Type.String(), message: Type.String() })),
    }),
  },
  { description: 'Every error, with the status matching `code`' },
);
// Fails the build when the schema and the contract's ErrorBody drift apart.
const errorBodyMatchesSchema: Static<typeof ErrorResponse> = {} as ErrorBody;
void errorBodyMatchesSchema;

/** `?from=&to=` (ISO 8601), the time-range filter of every time-based list (docs/design.md, "REST API"). */
export const TimeRangeQuery = {
  from: Type.Optional(Type.String({ format: 'date-time', description: 'Inclusive start, ISO 8601' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive end, ISO 8601' })),
};

/** `{"field": {"from", "to"}}` of every field a change touched. */
export const FieldChanges = Type.Record(Type.String(), Type.Object({ from: Type.Unknown(), to: Type.Unknown() }), {
  description: 'Each changed field, before and after',
});

/** The common part of a history entry (services/api/history.ts): who, when, what. */
export const HistoryEntryFields = {
  version: Type.Integer({ description: 'The object\'s version after the change' }),
  action: Type.String({ description: 'created, updated, or the action taken' }),
  changed_at: Timestamp(),
  changed_by: Nullable(Uuid({ description: 'The user who made the change (for an API key, the user it acts for)' })),
  api_key_id: Nullable(Uuid({ description: 'The API key used, if one was' })),
  changes: FieldChanges,
};

/** One version of an object: the common part, the version a restore brought back, and the object as it was. */
export const VersionEntryOf = <T extends TSchema>(record: T) => Type.Object({
  ...HistoryEntryFields,
  restored_from: Nullable(Type.Integer({ description: 'For a restore: the version brought back' })),
  data: record,
});
