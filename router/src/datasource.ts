import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
import type { Histogram } from 'prom-client';
import { ErrorCode, UNAVAILABLE_RETRY_AFTER_S } from '@lib/errors.js';
import { IdentityHeaders } from '@lib/identity.js';
import type { AssertionSigner } from '@lib/internal-auth.js';
import type { RouterContext } from './context.js';

export interface SubgraphHealthSink {
  /** A fetch to this subgraph failed (no answer, timeout, 5xx) or succeeded. */
  report(subgraph: string, ok: boolean, reason?: string): void;
}

/**
 * Calls one subgraph. Identity travels as headers for convenience and as a
 * signed assertion for trust; the request is built here, so nothing a client
 * sent in its own headers reaches the subgraph.
 *
 * A subgraph that does not answer within `timeoutMs`, cannot be reached or answers 5xx fails
 * only its part of the query: the gateway answers the rest, with a SERVICE_UNAVAILABLE error
 * naming the subgraph (and the fields it would have resolved are null).
 */
export class SubgraphDataSource extends RemoteGraphQLDataSource<RouterContext> {
  constructor(
    private readonly subgraph: string,
    url: string,
    private readonly signer: AssertionSigner,
    private readonly fetchSeconds: Histogram<'subgraph' | 'outcome'>,
    private readonly timeoutMs: number,
    private readonly health?: SubgraphHealthSink,
  ) {
    super({ url });
    /*
     * Node's own fetch (undici: keep-alive, a pool per subgraph, no limit on sockets), not the
     * gateway's default make-fetch-happen: its HTTP cache lookups, minipass streams and agent-base
     * (a stack trace captured per request, mapped through source maps under tsx) were 29% of the
     * router's busy CPU in a bench:router profile, and a call cost 0.6-0.8 ms of client CPU against
     * 0.5-0.6 ms through Node's fetch. With a deadline on the whole exchange.
     */
    this.fetcher = ((input: string, init: RequestInit) =>
      fetch(input, { ...init, signal: AbortSignal.timeout(this.timeoutMs) })) as unknown as RemoteGraphQLDataSource['fetcher'];
  }

  override async willSendRequest({
    request,
    context,
  }: Parameters<NonNullable<RemoteGraphQLDataSource<RouterContext>['willSendRequest']>>[0]) {
    const headers = request.http?.headers;
    if (!headers || !('identity' in context) || !context.identity) return;
    const { identity, requestId } = context;
    headers.set(IdentityHeaders.userId, identity.userId);
    headers.set(IdentityHeaders.role, identity.role);
    headers.set(IdentityHeaders.requestId, requestId);
    headers.set(IdentityHeaders.assertion, await this.signer.sign({ identity, subgraph: this.subgraph }));
  }

  override async process(options: GraphQLDataSourceProcessOptions<RouterContext>) {
    const end = this.fetchSeconds.startTimer({ subgraph: this.subgraph });
    try {
      const response = await super.process(options);
      end({ outcome: response.errors?.length ? 'error' : 'success' });
      this.health?.report(this.subgraph, true);
      return response;
    } catch (err) {
      const timedOut = isTimeout(err);
      end({ outcome: timedOut ? 'timeout' : 'failure' });
      if (!isUnavailable(err)) throw err;
      const reason = timedOut ? `no answer within ${this.timeoutMs} ms` : describe(err);
      this.health?.report(this.subgraph, false, reason);
      if ('log' in options.context && options.context.log) {
        options.context.log.warn({ subgraph: this.subgraph, reason }, 'subgraph unavailable');
      }
      throw new GraphQLError(
        timedOut ? `The ${this.subgraph} service did not answer in time` : `The ${this.subgraph} service is unavailable`,
        { extensions: { code: ErrorCode.SERVICE_UNAVAILABLE, subgraph: this.subgraph, retryAfter: UNAVAILABLE_RETRY_AFTER_S } },
      );
    }
  }
}

function isTimeout(err: unknown): boolean {
  const e = err as { name?: string; type?: string; cause?: { name?: string } } | null;
  return e?.name === 'TimeoutError' || e?.name === 'AbortError' || e?.type === 'aborted' || e?.cause?.name === 'TimeoutError';
}

/**
 * No answer (refused, reset, timed out) or a 5xx: the subgraph is down or overloaded. A 4xx (its
 * assertion refused), a body that is not JSON or a failure to sign are bugs of ours, not an
 * outage, and stay what they are (internal errors).
 */
function isUnavailable(err: unknown): boolean {
  if (isTimeout(err)) return true;
  if (err instanceof GraphQLError) {
    const status = (err.extensions?.['response'] as { status?: number } | undefined)?.status;
    return typeof status === 'number' && status >= 500;
  }
  // Node's fetch: TypeError "fetch failed" (no answer; the socket's error, ECONNREFUSED..., is its cause) or
  // "terminated" (the connection closed while the answer was read).
  const e = err as { name?: string; message?: string; cause?: unknown } | null;
  return e?.name === 'TypeError' && (e.message === 'fetch failed' || e.message === 'terminated');
}

function describe(err: unknown): string {
  if (err instanceof GraphQLError) {
    const status = (err.extensions?.['response'] as { status?: number } | undefined)?.status;
    if (status) return `HTTP ${status}`;
  }
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return e.code ?? e.cause?.code ?? e.cause?.message ?? e.message ?? 'unknown error';
}
