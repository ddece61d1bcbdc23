import { runMain } from '@lib/lifecycle.js';
import { createSubgraphBase } from '@lib/subgraph-main.js';
import { readEnv } from './environment.js';
import { createContextFactory, resolvers } from './resolvers.js';

/** Composition root of the exam subgraph: exams (generation and grading come next). */
async function main() {
  const env = readEnv();
  const base = await createSubgraphBase('exam', env);
  await base.start({
    schemaUrl: new URL('../schema.graphql', import.meta.url),
    resolvers,
    createContext: createContextFactory(base.prisma),
  });
}

runMain(main);
