import { Redis } from 'ioredis';
import { createLocalBlobStore } from '@lib/blob/local.js';
import { runMain } from '@lib/lifecycle.js';
import { redisOptionsFromUrl } from '@lib/redis.js';
import { createRetrieval } from '@lib/search/retrieval.js';
import { createSubgraphBase } from '@lib/subgraph-main.js';
import { signFileLink } from '@lib/file-links.js';
import { createTaskInfra } from '@lib/tasks/infra.js';
import { createContextFactory } from './context.js';
import { readEnv } from './environment.js';
import { resolvers } from './resolvers.js';
import { createSearchMetrics } from './search.js';

/** Composition root of the rag subgraph: courses, membership, documents and search. */
async function main() {
  const env = readEnv();
  const base = await createSubgraphBase('rag', env);
  const infra = createTaskInfra(env.REDIS_URL, base.prisma, base.log, { failFast: true });
  // Search results may live in a Redis that evicts; by default the same one.
  const cache = env.CACHE_REDIS_URL ? new Redis(redisOptionsFromUrl(env.CACHE_REDIS_URL, { maxRetriesPerRequest: 1 })) : infra.redis;
  if (cache !== infra.redis) cache.on('error', (err) => base.log.warn({ err: err.message }, 'cache redis error'));
  const retrieval = await createRetrieval(base.prisma, env, base.log.child({ component: 'retrieval' }));
  await base.start({
    schemaUrl: new URL('../schema.graphql', import.meta.url),
    resolvers,
    createContext: createContextFactory(
      base.prisma,
      {
        retrieval,
        prisma: base.prisma,
        redis: infra.redis,
        blobs: createLocalBlobStore(env.BLOB_DIR),
        queues: infra.queues,
        tasks: infra.tasks,
        quotas: { dailyUploadBytesPerUser: env.UPLOAD_DAILY_BYTES_PER_USER, courseStorageBytes: env.COURSE_STORAGE_BYTES },
      },
      { retrieval, cache, metrics: createSearchMetrics(base.metrics.registry) },
      env.FILE_URL_SECRET
        ? (target) => signFileLink(env.FILE_URL_SECRET!, target, Date.now() / 1000 + env.FILE_URL_TTL_S, env.PUBLIC_URL ?? '')
        : undefined,
    ),
    checks: { redis: () => infra.redis.ping() },
    closeSteps: [{ name: 'redis', run: () => Promise.all([infra.close(), cache === infra.redis ? null : cache.quit()]) }],
  });
}

runMain(main);
