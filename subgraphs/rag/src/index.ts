import { runMain } from '@lib/lifecycle.js';
import { createSubgraphBase } from '@lib/subgraph-main.js';
import { createContextFactory } from './context.js';
import { readEnv } from './environment.js';
import { resolvers } from './resolvers.js';

/** Composition root of the rag subgraph: courses and membership (documents and search come next). */
async function main() {
  const env = readEnv();
  const base = await createSubgraphBase('rag', env);
  await base.start({
    schemaUrl: new URL('../schema.graphql', import.meta.url),
    resolvers,
    createContext: createContextFactory(base.prisma),
  });
}

runMain(main);
