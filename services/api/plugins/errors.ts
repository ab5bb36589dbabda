import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { isDatabaseUnavailable, PgError, pgErrorCode } from '../../shared/db.js';
import { ApiError, codeOfStatus, errorBody, errorHeaders, internalError, unavailable, type Issue } from '../../shared/contracts/errors.js';

interface ValidationItem {
  keyword?: string;
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/**
 * One place that turns every failure into the error set's shape (services/shared/contracts/errors.ts):
 * `{"error":{"code","message","request_id","issues"}}` with the matching status. A 5xx never shows
 * its cause: it is logged with the request id, which the client gets to quote.
 */
export const errorsPlugin = fp(
  async (app) => {
    app.setErrorHandler((err: FastifyError, request, reply) => {
      const mapped = toApiError(err);
      if (mapped.statusCode >= 500) request.log.error({ err }, 'request failed');
      return sendError(request, reply, mapped);
    });

    app.setNotFoundHandler((request, reply) =>
      sendError(request, reply, new ApiError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)));
  },
  { name: 'fieldops-errors' },
);

function sendError(request: FastifyRequest, reply: FastifyReply, err: ApiError): FastifyReply {
  return reply.code(err.statusCode).headers(errorHeaders(err)).type('application/json; charset=utf-8').send(errorBody(err, request.id));
}

export function toApiError(err: FastifyError | Error): ApiError {
  if (err instanceof ApiError) return err;
  const fastifyErr = err as FastifyError;
  if (fastifyErr.validation) {
    // A path parameter that cannot be an id names nothing: the same answer as a missing object.
    if (fastifyErr.validationContext === 'params') return new ApiError('not_found', 'not found');
    return new ApiError('bad_request', 'the request is not valid', validationIssues(fastifyErr.validation as ValidationItem[]));
  }
  // The database timed a statement out, is restarting or cannot be reached: retry, rather than a 500.
  if (isDatabaseUnavailable(err)) return unavailable('the database is unavailable or overloaded; retry shortly');
  const pgCode = pgErrorCode(err);
  // Constraints are the last line of defence; repositories turn the expected ones into clearer messages.
  if (pgCode === PgError.uniqueViolation) return new ApiError('conflict', 'an object with these values already exists');
  if (pgCode === PgError.foreignKeyViolation) return new ApiError('bad_request', 'the request references an object that does not exist');
  // Class 22 (data exception): a value PostgreSQL refuses — a date out of its range, a malformed number.
  if (pgCode === PgError.checkViolation || pgCode?.startsWith('22')) {
    return new ApiError('bad_request', 'a value is out of range or malformed');
  }
  const status = fastifyErr.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // Fastify's own 4xx (malformed JSON, unsupported media type, body too large) keep their status.
    return new ApiError(codeOfStatus(status), err.message, [], status);
  }
  return internalError();
}

/** Ajv errors as `{path, message}`, one per field, with paths dotted the way a client names fields. */
function validationIssues(items: ValidationItem[]): Issue[] {
  const seen = new Map<string, Issue>();
  for (const item of items) {
    const segments = (item.instancePath ?? '').split('/').filter(Boolean).map(unescapePointer);
    const named = item.params?.missingProperty ?? item.params?.additionalProperty;
    if (typeof named === 'string') segments.push(named);
    const path = segments.join('.');
    let message = item.message ?? 'is not valid';
    if (item.params?.missingProperty) message = 'is required';
    if (item.params?.additionalProperty) message = 'is not a known field';
    if (Array.isArray(item.params?.allowedValues)) message = `must be one of ${item.params.allowedValues.join(', ')}`;
    if (!seen.has(path)) seen.set(path, { path, message });
  }
  // A nullable object's `anyOf` failure only repeats what its fields' issues say more precisely.
  const anyOfPaths = new Set(items.filter((i) => i.keyword === 'anyOf').map((i) => (i.instancePath ?? '').split('/').filter(Boolean).map(unescapePointer).join('.')));
  return [...seen.values()].filter((issue) =>
    !anyOfPaths.has(issue.path) || ![...seen.keys()].some((other) => other.startsWith(issue.path === '' ? '' : `${issue.path}.`) && other !== issue.path));
}

const unescapePointer = (segment: string) => segment.replaceAll('~1', '/').replaceAll('~0', '~');
