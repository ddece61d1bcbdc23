import { Redis } from 'ioredis';
import { createLocalBlobStore } from '@lib/blob/local.js';
import { createJobQueues } from '@lib/jobs/queues.js';
import { runMain } from '@lib/lifecycle.js';
import { bullConnection, redisOptionsFromUrl } from '@lib/redis.js';
import { createSubgraphBase } from '@lib/subgraph-main.js';
import { createTaskEventPublisher } from '@lib/tasks/events.js';
import { createTaskStore } from '@lib/tasks/store.js';
import { createRetrieval } from '@lib/search/retrieval.js';
import { createContextFactory } from './context.js';
import { createSearchMetrics } from './search.js';
import { readEnv } from './environment.js';
import { resolvers } from './resolvers.js';

/** Composition root of the rag subgraph: courses, membership and documents (search comes next). */
async function main() {
  const env = readEnv();
  const base = await createSubgraphBase('rag', env);
  const connection = bullConnection(env.REDIS_URL);
  const redis = new Redis(redisOptionsFromUrl(env.REDIS_URL, { maxRetriesPerRequest: null }));
  redis.on('error', (err) => base.log.warn({ err: err.message }, 'redis error'));
  const queues = createJobQueues(connection, (err) => base.log.error({ err }, 'queue error'));
  const publisher = createTaskEventPublisher(connection);
  const cache = env.CACHE_REDIS_URL ? new Redis(redisOptionsFromUrl(env.CACHE_REDIS_URL, { maxRetriesPerRequest: 1 })) : redis;
  if (cache !== redis) cache.on('error', (err) => base.log.warn({ err: err.message }, 'cache redis error'));
  const retrieval = await createRetrieval(base.prisma, env, base.log.child({ component: 'retrieval' }));
  await base.start({
    schemaUrl: new URL('../schema.graphql', import.meta.url),
    resolvers,
    createContext: createContextFactory(
      base.prisma,
      {
        retrieval,
        prisma: base.prisma,
        redis,
        blobs: createLocalBlobStore(env.BLOB_DIR),
        queues,
        tasks: createTaskStore(base.prisma, publisher),
      },
      { retrieval, cache, metrics: createSearchMetrics(base.metrics.registry) },
    ),
    checks: { redis: () => redis.ping() },
    closeSteps: [
      { name: 'redis', run: () => Promise.all([queues.close(), publisher.close(), redis.quit(), cache === redis ? null : cache.quit()]) },
    ],
  });
}

runMain(main);
