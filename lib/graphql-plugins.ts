import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import type { GraphQLFormattedError } from 'graphql';
import { ErrorCode } from './errors.js';
import type { Logger } from './logger.js';

export interface LoggedContext extends BaseContext {
  log: Logger;
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
 * Errors without a stable code are bugs: log them whole, and send clients a
 * generic message in production instead of internals.
 */
export function formatErrorFor(log: Logger, production: boolean) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const code = formatted.extensions?.['code'];
    if (code === ErrorCode.INTERNAL_SERVER_ERROR || code === undefined) {
      log.error({ err: error }, 'unexpected error in resolver');
      if (production) return { message: 'Internal server error', extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } };
    }
    return formatted;
  };
}
