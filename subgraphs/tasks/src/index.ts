import { runMain } from '@lib/lifecycle.js';
import { createSubgraphBase } from '@lib/subgraph-main.js';
import { createTaskInfra } from '@lib/tasks/infra.js';
import { readEnv } from './environment.js';
import { createContextFactory, resolvers } from './resolvers.js';

/** Composition root of the tasks subgraph: the Task entity, its queries and its controls. */
async function main() {
  const env = readEnv();
  const base = await createSubgraphBase('tasks', env);
  const infra = createTaskInfra(env.REDIS_URL, base.prisma, base.log, { failFast: true });
  await base.start({
    schemaUrl: new URL('../schema.graphql', import.meta.url),
    resolvers,
    createContext: createContextFactory(base.prisma, { queues: infra.queues, store: infra.tasks }),
    checks: { redis: () => infra.redis.ping() },
    closeSteps: [{ name: 'redis', run: () => infra.close() }],
  });
}

runMain(main);
