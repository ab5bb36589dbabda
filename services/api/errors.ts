import { Type } from '@fastify/type-provider-typebox';

/** The error codes of the REST contract (DESIGN section 6) and their statuses. */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  payment_required: 402,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  rate_limited: 429,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface Issue {
  /** The field, dotted (`email`, `items.0.quantity`). */
  path: string;
  message: string;
}

/**
 * An error a client is meant to see: its code, message and issues reach the response as they are.
 * Throw it from handlers and repositories; the error handler maps everything else.
 */
export class ApiError extends Error {
  readonly statusCode: number;

  constructor(readonly code: ErrorCode, message: string, readonly issues: Issue[] = []) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = ERROR_STATUS[code];
  }
}

export const badRequest = (message: string, issues: Issue[] = []) => new ApiError('bad_request', message, issues);
/** A field that points at something that does not exist for this tenant (a 400 naming the field). */
export const badReference = (path: string, what: string) =>
  badRequest(`${path} does not name an existing ${what}`, [{ path, message: `no ${what} with this id` }]);
export const unauthorized = (message = 'a valid bearer token or API key is required') => new ApiError('unauthorized', message);
export const paymentRequired = (message = 'API access needs the unlimited plan or the api add-on') => new ApiError('payment_required', message);
export const forbidden = (message: string) => new ApiError('forbidden', message);
/** Missing and another tenant's objects get the same answer. */
export const notFound = (what: string) => new ApiError('not_found', `${what} not found`);
export const conflict = (message: string, issues: Issue[] = []) => new ApiError('conflict', message, issues);
export const rateLimited = (message: string) => new ApiError('rate_limited', message);

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
