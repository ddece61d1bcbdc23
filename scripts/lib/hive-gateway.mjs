/**
 * A second baseline for `npm run bench:router`: Hive Gateway (its runtime, createGatewayRuntime, as a library served
 * through node:http) on the same supergraph, with none of the router's auth, limits or metrics.
 * Like the bare Apollo gateway it sends each subgraph the bench user's internal assertion from the
 * router's signer (reused for 30 s, then signed anew), and it does not log per request. Plain JavaScript: the runtime's typings (its own @types/node, its
 * augmentation of graphql's error extensions) stay out of the project's type check.
 */
import { createGatewayRuntime } from '@graphql-hive/gateway';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createAssertionSigner } from '../../lib/internal-auth.js';

const env = process.env;
const signer = await createAssertionSigner(JSON.parse(env['INTERNAL_JWT_PRIVATE_JWK']));
const identity = { userId: env['BENCH_USER'], role: 'TEACHER' };

// The subgraphs' URLs of this run replace the ones composed into the supergraph.
const supergraph = readFileSync(env['SUPERGRAPH_PATH'] ?? 'schema/supergraph.graphql', 'utf8').replace(
  /@join__graph\(name: "(\w+)", url: "[^"]*"\)/g,
  (whole, name) => {
    const url = env[`SUBGRAPH_${name.toUpperCase()}_URL`];
    return url ? `@join__graph(name: "${name}", url: "${url}")` : whole;
  },
);

const gateway = createGatewayRuntime({
  supergraph,
  logging: 'error',
  landingPage: false,
  graphiql: false,
  // Hive's HTTP transport merges identical queries in flight to a subgraph (same URL, body and
  // headers) into one fetch by default; HIVE_DEDUPE=false turns that off, as the Apollo gateways have it.
  ...(env['HIVE_DEDUPE'] === 'false' ? { transportEntries: { '*.http': { options: { deduplicateInflightRequests: false } } } } : {}),
  propagateHeaders: {
    fromClientToSubgraphs: async ({ subgraphName }) => ({
      'x-internal-assertion': await signer.sign({ identity, subgraph: subgraphName.toLowerCase() }),
    }),
  },
});
const server = createServer(gateway);
await new Promise((resolve) => server.listen(Number(env['PORT'] ?? 0), '127.0.0.1', resolve));
const { port } = server.address();
process.stdout.write(`${JSON.stringify({ msg: 'router ready', url: `http://127.0.0.1:${port}/graphql` })}\n`);
process.on('SIGTERM', () => {
  server.close();
  void Promise.resolve(gateway.dispose()).then(() => process.exit(0));
});
