import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
import type { Histogram } from 'prom-client';
import { Agent, request } from 'undici';
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
     * undici's `request` on a keep-alive pool of this subgraph's own, not the gateway's default
     * make-fetch-happen (its HTTP cache lookups, minipass streams and agent-base, which captures a
     * stack trace per request: 29% of the router's busy CPU in a bench:router profile) nor Node's
     * `fetch` (the same undici under WHATWG streams and Request/Response objects: ~17% of the
     * router's CPU while the tutor streams). A deadline on the whole exchange, body included.
     */
    this.agent = new Agent({ keepAliveTimeout: 60_000, connections: SUBGRAPH_CONNECTIONS });
    this.fetcher = ((input: string, init: { method?: string; headers?: Record<string, string>; body?: string }) =>
      send(this.agent, input, init, this.timeoutMs)) as unknown as RemoteGraphQLDataSource['fetcher'];
  }

  private readonly agent: Agent;

  /** Closes the pool's idle connections (shutdown). */
  close(): Promise<void> {
    return this.agent.close();
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
  // undici: the socket's error (refused, reset, closed while the answer was read) or its own timeouts.
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NO_ANSWER_CODES.has(code);
}

/** Errors that mean the subgraph gave no (whole) answer: it is down, restarting or unreachable. */
const NO_ANSWER_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Sockets a router keeps to one subgraph at most (requests beyond wait for one). */
const SUBGRAPH_CONNECTIONS = 256;

/** The answer as the gateway reads a fetch response: status, headers, body (read whole, within the deadline). */
async function send(
  agent: Agent,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string },
  timeoutMs: number,
) {
  const res = await request(url, {
    dispatcher: agent,
    method: (init.method ?? 'POST') as 'POST',
    headers: init.headers,
    body: init.body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.body.text();
  const headers = res.headers;
  const get = (name: string) => {
    const value = headers[name.toLowerCase()];
    return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
  };
  const response = {
    url,
    status: res.statusCode,
    statusText: '',
    ok: res.statusCode >= 200 && res.statusCode < 300,
    redirected: false,
    bodyUsed: true,
    headers: { get, has: (name: string) => get(name) !== null },
    text: async () => text,
    json: async () => JSON.parse(text) as unknown,
    arrayBuffer: async () => new TextEncoder().encode(text).buffer,
    clone: () => response,
  };
  return response;
}

function describe(err: unknown): string {
  if (err instanceof GraphQLError) {
    const status = (err.extensions?.['response'] as { status?: number } | undefined)?.status;
    if (status) return `HTTP ${status}`;
  }
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return e.code ?? e.cause?.code ?? e.cause?.message ?? e.message ?? 'unknown error';
}
