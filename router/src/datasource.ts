import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { Histogram } from 'prom-client';
import { IdentityHeaders } from '@lib/identity.js';
import type { AssertionSigner } from '@lib/internal-auth.js';
import type { RouterContext } from './context.js';

/**
 * Calls one subgraph. Identity travels as headers for convenience and as a
 * signed assertion for trust; the request is built here, so nothing a client
 * sent in its own headers reaches the subgraph.
 */
export class SubgraphDataSource extends RemoteGraphQLDataSource<RouterContext> {
  constructor(
    private readonly subgraph: string,
    url: string,
    private readonly signer: AssertionSigner,
    private readonly fetchSeconds: Histogram<'subgraph' | 'outcome'>,
  ) {
    super({ url });
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
      return response;
    } catch (err) {
      end({ outcome: 'failure' });
      throw err;
    }
  }
}
