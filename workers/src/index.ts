import express from 'express';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalBlobStore } from '@lib/blob/local.js';
import { createPrisma } from '@lib/db/client.js';
import { createLifecycle, runMain } from '@lib/lifecycle.js';
import { createLogger } from '@lib/logger.js';
import { createMetrics } from '@lib/metrics.js';
import { mountProbes } from '@lib/probes.js';
import { createTaskEventStream } from '@lib/tasks/events.js';
import { createTaskInfra } from '@lib/tasks/infra.js';
import { readEnv } from './environment.js';
import { createIngestHandler } from './ingest/handler.js';
import { createReindexHandler } from './reindex/handler.js';
import { createExamCache } from './exam/cache.js';
import { createExamHandler } from './exam/handler.js';
import { createRetrieval } from '@lib/search/retrieval.js';
import { createJobMetrics } from './metrics.js';
import { reconcile, startWorkers, sweepUploads } from './runner.js';
import { Redis } from 'ioredis';
import { createTokenBudget } from '@lib/answers/budget.js';
import { createAnswerCache } from '@lib/answers/cache.js';
import { createAnswerQueue } from '@lib/answers/job.js';
import { createAnswerPublisher } from '@lib/answers/stream.js';
import { chatModelFromEnv } from '@lib/model/chat.js';
import { redisOptionsFromUrl } from '@lib/redis.js';
import { createAnswerHandler, type AnswerDeps } from './answer/handler.js';
import { createTutorMetrics } from './answer/metrics.js';
import { startAnswerWorker, sweepAnswers } from './answer/worker.js';

/** Composition root of a worker process: every job handler, on its queue. */
async function main() {
  const env = readEnv();
  const log = createLogger({ service: 'worker', level: env.LOG_LEVEL, format: env.LOG_FORMAT });
  const metrics = createMetrics('worker');
  const prisma = createPrisma({
    url: env.DATABASE_URL,
    max: env.DB_POOL_MAX,
    registry: metrics.registry,
    log: log.child({ component: 'prisma' }),
    applicationName: 'worker',
  });
  const infra = createTaskInfra(env.REDIS_URL, prisma, log);
  const { connection, redis, queues, tasks } = infra;
  const events = await createTaskEventStream(connection, (err) => log.error({ err }, 'task event stream error'));
  const blobs = createLocalBlobStore(env.BLOB_DIR);
  const retrieval = await createRetrieval(prisma, env, log.child({ component: 'retrieval' }));
  const answerQueue = createAnswerQueue(connection, (err) => log.error({ err }, 'answer queue error'));
  const jobMetrics = createJobMetrics(metrics, () => [queues.queue('INGEST_DOCUMENT'), queues.queue('GENERATE_EXAM'), answerQueue.queue]);
  // The model (tutor answers, exam questions) and the LLM-level caches.
  const model = chatModelFromEnv(env, log.child({ component: 'model' }));
  const cacheRedis = env.CACHE_REDIS_URL ? new Redis(redisOptionsFromUrl(env.CACHE_REDIS_URL, { maxRetriesPerRequest: 1 })) : redis;
  if (cacheRedis !== redis) cacheRedis.on('error', (err) => log.warn({ err: err.message }, 'cache redis error'));

  const runner = startWorkers({
    connection,
    concurrency: env.WORKER_CONCURRENCY,
    lockDurationMs: env.WORKER_LOCK_DURATION_MS,
    stalledIntervalMs: env.WORKER_STALLED_INTERVAL_MS,
    log,
    metrics: jobMetrics,
    tasks,
    prisma,
    events,
    handlers: {
      REINDEX_COURSE: createReindexHandler({ prisma, tasks, retrieval }),
      GENERATE_EXAM: createExamHandler({
        prisma,
        tasks,
        model,
        cache: createExamCache(cacheRedis, env.LLM_CACHE_TTL_S),
        config: {
          engine: env.EXAM_ENGINE,
          maxPassages: env.EXAM_MAX_PASSAGES,
          modelBatch: env.EXAM_MODEL_BATCH,
          modelPassages: env.EXAM_MODEL_PASSAGES,
          modelExtraCalls: env.EXAM_MODEL_EXTRA_CALLS,
          timeoutMs: env.EXAM_TIMEOUT_MS,
          progressIntervalMs: env.PROGRESS_INTERVAL_MS,
        },
      }),
      INGEST_DOCUMENT: createIngestHandler({
        retrieval,
        prisma,
        tasks,
        blobs,
        metrics: jobMetrics,
        config: {
          maxPages: env.INGEST_MAX_PAGES,
          maxChars: env.INGEST_MAX_CHARS,
          parseTimeoutMs: env.PARSE_TIMEOUT_MS,
          parseMemoryMb: env.PARSE_MEMORY_MB,
          chunkTargetChars: env.CHUNK_TARGET_CHARS,
          chunkOverlapChars: env.CHUNK_OVERLAP_CHARS,
          progressIntervalMs: env.PROGRESS_INTERVAL_MS,
        },
      }),
    },
  });

  const answerDeps: AnswerDeps = {
    prisma,
    retrieval,
    model,
    publisher: createAnswerPublisher(redis),
    cache: createAnswerCache(cacheRedis, env.LLM_CACHE_TTL_S),
    budget: createTokenBudget(redis, env.LLM_DAILY_TOKENS_PER_USER),
    metrics: createTutorMetrics(metrics.registry),
    config: {
      passages: env.ANSWER_PASSAGES,
      maxHistoryTokens: env.ANSWER_HISTORY_TOKENS,
      maxHistoryTurns: 12,
      flushMs: env.ANSWER_FLUSH_MS,
    },
  };
  const controlSubscriber = new Redis(redisOptionsFromUrl(env.REDIS_URL, { maxRetriesPerRequest: null }));
  controlSubscriber.on('error', (err) => log.warn({ err: err.message }, 'control subscriber error'));
  const answers = await startAnswerWorker({
    connection,
    subscriber: controlSubscriber,
    concurrency: env.ANSWER_CONCURRENCY,
    lockDurationMs: env.ANSWER_LOCK_DURATION_MS,
    stalledIntervalMs: Math.max(1000, Math.floor(env.ANSWER_LOCK_DURATION_MS / 2)),
    log: log.child({ component: 'tutor' }),
    deps: answerDeps,
    handler: createAnswerHandler(answerDeps),
  });
  log.info({ engine: model ? 'MODEL' : 'OFFLINE', model: model?.model ?? null }, 'tutor engine');
  log.info({ engine: model && env.EXAM_ENGINE === 'auto' ? 'MODEL' : 'OFFLINE', model: model?.model ?? null }, 'exam engine');

  const reconciler = setInterval(() => {
    sweepAnswers(answerDeps, answerQueue, log, env.ANSWER_STALE_MS).catch((err) => log.warn({ err }, 'answer sweep failed'));
    reconcile(prisma, queues, log, env.RECONCILE_INTERVAL_MS).catch((err) => log.warn({ err }, 'reconcile failed'));
    sweepUploads(prisma, blobs, log, (env.UPLOAD_TTL_S + 3600) * 1000).catch((err) => log.warn({ err }, 'upload sweep failed'));
  }, env.RECONCILE_INTERVAL_MS);
  reconciler.unref();

  const app = express();
  const server = createServer(app);
  const lifecycle = createLifecycle({
    log,
    drainDelayMs: 0,
    timeoutMs: env.SHUTDOWN_TIMEOUT_MS + 5000,
    steps: [
      { name: 'reconciler', run: async () => clearInterval(reconciler) },
      { name: 'workers', run: () => Promise.all([runner.close(env.SHUTDOWN_TIMEOUT_MS), answers.close(env.SHUTDOWN_TIMEOUT_MS)]) },
      { name: 'events', run: () => events.close() },
      { name: 'http', run: () => new Promise<void>((resolve) => server.close(() => resolve())) },
      {
        name: 'clients',
        run: () => Promise.all([prisma.$disconnect(), infra.close(), answerQueue.close(), cacheRedis === redis ? null : cacheRedis.quit()]),
      },
    ],
  });
  mountProbes(app, {
    lifecycle,
    registry: metrics.registry,
    log,
    checks: { database: () => prisma.$queryRaw`SELECT 1`, redis: () => redis.ping() },
  });
  await new Promise<void>((resolve) => server.listen(env.PORT, env.HOST, resolve));
  const { port } = server.address() as AddressInfo;
  log.info(
    { url: `http://${env.HOST === '0.0.0.0' ? '127.0.0.1' : env.HOST}:${port}`, concurrency: env.WORKER_CONCURRENCY },
    'worker ready',
  );
}

runMain(main);
