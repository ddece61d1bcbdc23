import { GraphQLError } from 'graphql';

/** Stable error codes, sent in `extensions.code`. Clients may switch on them. */
export const ErrorCode = {
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  NOT_FOUND: 'NOT_FOUND',
  RATE_LIMITED: 'RATE_LIMITED',
  CONFLICT: 'CONFLICT',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_TYPE: 'UNSUPPORTED_TYPE',
  /** A storage quota (a course's documents) has no room for this: waiting does not help, freeing space does. */
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const httpStatus: Record<ErrorCode, number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  BAD_USER_INPUT: 400,
  NOT_FOUND: 404,
  RATE_LIMITED: 429,
  CONFLICT: 409,
  INTERNAL_SERVER_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_TYPE: 415,
  // Not 429: retrying later does not help. The request's content does not fit in what is left.
  QUOTA_EXCEEDED: 413,
};

export function httpStatusFor(code: ErrorCode): number {
  return httpStatus[code];
}

/** A GraphQL error with a stable code; `extra` lands in `extensions`. */
export function appError(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extra } });
}

export const unauthenticated = (message = 'Authentication required') => appError(ErrorCode.UNAUTHENTICATED, message);
export const forbidden = (message = 'You do not have access to this resource') => appError(ErrorCode.FORBIDDEN, message);
export const badInput = (message: string, field?: string) => appError(ErrorCode.BAD_USER_INPUT, message, field ? { field } : {});
export const notFound = (what: string) => appError(ErrorCode.NOT_FOUND, `${what} not found`);

/** The body of an HTTP error response shaped as a GraphQL response. */
export function errorBody(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
  return { errors: [{ message, extensions: { code, ...extra } }] };
}
