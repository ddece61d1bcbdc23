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

/** What a client is told to wait (Retry-After, `extensions.retryAfter`) when a dependency is down. */
export const UNAVAILABLE_RETRY_AFTER_S = 2;

/** SQLSTATEs of a database that cannot be reached or is going away (class 08, 57P01-03, 53300). */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;
/**
 * Prisma's codes for the same (can't reach, timed out, closed, pool timeout, too many connections,
 * no connection for a transaction in time: the database is saturated, retrying later helps).
 */
const UNAVAILABLE_PRISMA = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028', 'P2037']);
const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** Driver adapter error kinds (@prisma/driver-adapter-utils) that mean the same. */
const UNAVAILABLE_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
/** Messages of node-postgres, PgBouncer and ioredis that carry no code. */
const UNAVAILABLE_MESSAGE =
  /Connection terminated|is not queryable|connection timeout|timeout exceeded when trying to connect|Can't reach database|server closed the connection|query_wait_timeout|pgbouncer cannot connect|server login has been failing|Connection is closed|Reached the max retries per request|Stream isn't writeable|the database system is (starting up|shutting down|in recovery)|terminating connection due to administrator command/i;

/**
 * Whether an error (or anything in its `cause`/`originalError` chain) means that PostgreSQL,
 * PgBouncer or Redis cannot be reached right now: the request may succeed if retried shortly,
 * and the client should be told so (SERVICE_UNAVAILABLE), not shown an internal error.
 */
export function isDependencyUnavailable(err: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current !== null && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const e = current as { code?: unknown; kind?: unknown; name?: unknown; message?: unknown; cause?: unknown; originalError?: unknown };
    if (
      typeof e.code === 'string' &&
      (UNAVAILABLE_PRISMA.has(e.code) || UNAVAILABLE_ERRNO.has(e.code) || UNAVAILABLE_SQLSTATE.test(e.code))
    ) {
      return true;
    }
    if (typeof e.kind === 'string' && UNAVAILABLE_KINDS.has(e.kind)) return true;
    if (
      typeof (e as { originalCode?: unknown }).originalCode === 'string' &&
      UNAVAILABLE_SQLSTATE.test((e as { originalCode: string }).originalCode)
    ) {
      return true;
    }
    if (e.name === 'MaxRetriesPerRequestError' || e.name === 'PrismaClientInitializationError') return true;
    if (typeof e.message === 'string' && UNAVAILABLE_MESSAGE.test(e.message)) return true;
    current = e.originalError ?? e.cause;
  }
  return false;
}

/** The error a client gets instead: retryable, with no detail of what failed inside. */
export function unavailableError(extra: Record<string, unknown> = {}) {
  return appError(ErrorCode.SERVICE_UNAVAILABLE, 'The service is temporarily unavailable; retry shortly', {
    retryAfter: UNAVAILABLE_RETRY_AFTER_S,
    ...extra,
  });
}
