import type { ApolloServerPlugin } from '@apollo/server';
import { ErrorCode, UNAVAILABLE_RETRY_AFTER_S } from '@lib/errors.js';
import type { RouterContext } from './context.js';

/**
 * A response carrying SERVICE_UNAVAILABLE (a subgraph that did not answer, a database or Redis
 * out of reach) tells the client when to retry: `Retry-After` (the largest `retryAfter` of its
 * errors), and HTTP 503 when nothing at all could be answered. Partial data stays 200.
 */
export const unavailableResponses: ApolloServerPlugin<RouterContext> = {
  async requestDidStart() {
    return {
      async willSendResponse({ response }) {
        if (response.body.kind !== 'single') return;
        const { errors, data } = response.body.singleResult;
        const unavailable = errors?.filter((e) => e.extensions?.['code'] === ErrorCode.SERVICE_UNAVAILABLE);
        if (!unavailable?.length) return;
        const retryAfter = Math.max(
          ...unavailable.map((e) => {
            const s = e.extensions?.['retryAfter'];
            return typeof s === 'number' && Number.isFinite(s) && s > 0 ? Math.ceil(s) : UNAVAILABLE_RETRY_AFTER_S;
          }),
        );
        response.http.headers.set('retry-after', String(retryAfter));
        const nothing = data === null || data === undefined || Object.values(data).every((v) => v === null);
        if (nothing && errors!.length === unavailable.length) response.http.status = 503;
      },
    };
  },
};
