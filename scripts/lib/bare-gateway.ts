/**
 * The baseline for `npm run bench:router`: a bare @apollo/gateway on the same
 * supergraph, with none of the router's auth, limits or metrics. Subgraphs
 * still demand an internal assertion, so it sends one signed once at start.
 */
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { readFileSync } from 'node:fs';
import { createAssertionSigner } from '../../lib/internal-auth.js';

const env = process.env;
const signer = await createAssertionSigner(JSON.parse(env['INTERNAL_JWT_PRIVATE_JWK']!));
const identity = { userId: env['BENCH_USER']!, role: 'TEACHER' as const };

const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(env['SUPERGRAPH_PATH'] ?? 'schema/supergraph.graphql', 'utf8'),
  buildService: ({ name, url }) =>
    new RemoteGraphQLDataSource({
      url: env[`SUBGRAPH_${name.toUpperCase()}_URL`] ?? url,
      willSendRequest: async ({ request }) => {
        request.http?.headers.set('x-internal-assertion', await signer.sign({ identity, subgraph: name }));
      },
    }),
});
const server = new ApolloServer({ gateway });
const { url } = await startStandaloneServer(server, { listen: { port: Number(env['PORT'] ?? 0), host: '127.0.0.1' } });
process.stdout.write(`${JSON.stringify({ msg: 'router ready', url: `${url.replace(/\/$/, '')}/graphql` })}\n`);
process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
