import { Redis } from 'ioredis';
import { createTokenBudget } from '@lib/answers/budget.js';
import { createAnswerQueue } from '@lib/answers/job.js';
import { createAnswerPublisher, recordAnswerRow } from '@lib/answers/stream.js';
import { runMain } from '@lib/lifecycle.js';
import { bullConnection, redisOptionsFromUrl } from '@lib/redis.js';
import { createSubgraphBase } from '@lib/subgraph-main.js';
import { readEnv } from './environment.js';
import { controlFrom, createContextFactory, resolvers } from './resolvers.js';

/** Composition root of the chat subgraph: conversations with the tutor, questions in, answers queued. */
async function main() {
  const env = readEnv();
  const base = await createSubgraphBase('chat', env);
  const redis = new Redis(redisOptionsFromUrl(env.REDIS_URL, { maxRetriesPerRequest: 1 }));
  redis.on('error', (err) => base.log.warn({ err: err.message }, 'redis error'));
  const queue = createAnswerQueue(bullConnection(env.REDIS_URL), (err) => base.log.error({ err }, 'answer queue error'));
  await base.start({
    schemaUrl: new URL('../schema.graphql', import.meta.url),
    resolvers,
    createContext: createContextFactory(base.prisma, {
      queue,
      budget: createTokenBudget(redis, env.LLM_DAILY_TOKENS_PER_USER),
      publisher: createAnswerPublisher(redis),
      control: controlFrom(redis),
      recordRow: (messageId, row) => recordAnswerRow(redis, messageId, row),
    }),
    checks: { redis: () => redis.ping() },
    closeSteps: [{ name: 'redis', run: () => Promise.all([queue.close(), redis.quit()]) }],
  });
}

runMain(main);
