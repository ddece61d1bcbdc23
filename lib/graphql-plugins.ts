import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import type { GraphQLFormattedError } from 'graphql';
import { ErrorCode, isDependencyUnavailable, UNAVAILABLE_RETRY_AFTER_S } from './errors.js';
import type { Logger } from './logger.js';

export interface LoggedContext extends BaseContext {
  log: Logger;
  /** The operation's estimated cost, where the service estimates one (the router): logged with it. */
  cost?: number;
}

/** One log line per operation, on the request's child logger (so it carries the request id). */
export function requestLogPlugin<C extends LoggedContext>(): ApolloServerPlugin<C> {
  return {
    async requestDidStart({ contextValue }) {
      const started = Date.now();
      return {
        async willSendResponse({ request, errors, operationName, contextValue: ctx }) {
          const codes = errors?.map((e) => e.extensions?.['code'] ?? 'ERROR');
          (ctx ?? contextValue).log.info(
            {
              operation: operationName ?? request.operationName ?? null,
              ms: Date.now() - started,
              ...(ctx?.cost === undefined ? {} : { cost: ctx.cost }),
              ...(codes?.length ? { errors: codes } : {}),
            },
            'graphql operation',
          );
        },
      };
    },
  };
}

/**
 * The codes clients may see with their message: the project's own (`ErrorCode`) and Apollo
 * Server's request errors. In production any other code (a subgraph's DOWNSTREAM_SERVICE_ERROR,
 * a library's) is an internal error.
 */
export const CLIENT_ERROR_CODES: ReadonlySet<string> = new Set<string>([
  ...Object.values(ErrorCode).filter((c) => c !== ErrorCode.INTERNAL_SERVER_ERROR),
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);

/** Extensions that describe the server rather than the request: a subgraph in development mode adds them. */
const INTERNAL_EXTENSIONS = ['stacktrace', 'exception', 'serviceName'];

/**
 * Errors without a stable code are bugs: log them whole. In production, clients get a generic
 * message instead of internals, whatever mode a subgraph whose error is relayed runs in: an
 * error whose code is not a client code is masked (its path kept), stack traces, exceptions and
 * subgraph names are removed from every error, and "Did you mean …" suggestions are cut.
 */
export function formatErrorFor(log: Logger, production: boolean) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const code = formatted.extensions?.['code'];
    const known = typeof code === 'string' && CLIENT_ERROR_CODES.has(code);
    // PostgreSQL, PgBouncer or Redis out of reach: retryable, said so, in every mode (no driver message).
    if (!known && isDependencyUnavailable(error)) {
      log.warn({ err: error }, 'dependency unavailable');
      return {
        message: 'The service is temporarily unavailable; retry shortly',
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: { code: ErrorCode.SERVICE_UNAVAILABLE, retryAfter: UNAVAILABLE_RETRY_AFTER_S },
      };
    }
    if (code === ErrorCode.INTERNAL_SERVER_ERROR || code === undefined || (production && !known)) {
      log.error({ err: error, code }, 'unexpected error in resolver');
      if (production) {
        return {
          message: 'Internal server error',
          ...(formatted.path ? { path: formatted.path } : {}),
          extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
        };
      }
    }
    if (!production) return formatted;
    const extensions = { ...formatted.extensions };
    for (const key of INTERNAL_EXTENSIONS) delete extensions[key];
    return { ...formatted, message: formatted.message.replace(/ ?Did you mean .+\?$/s, ''), extensions };
  };
}
