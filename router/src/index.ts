import { Redis } from 'ioredis';
import { createAnswerHub, readAnswerHistory, readAnswerStart } from '@lib/answers/stream.js';
import { createLocalBlobStore } from '@lib/blob/local.js';
import { createAssertionSigner } from '@lib/internal-auth.js';
import { bullConnection } from '@lib/redis.js';
import { createTaskEventStream } from '@lib/tasks/events.js';
import { runMain } from '@lib/lifecycle.js';
import { createLogger } from '@lib/logger.js';
import { createMetrics } from '@lib/metrics.js';
import { createAuthenticator } from './auth.js';
import { readEnv } from './environment.js';
import { createRateLimiter } from './rate-limit.js';
import { startRouter } from './server.js';

/** Composition root: config, logger, clients, then the server. */
async function main() {
  const env = readEnv();
  const log = createLogger({ service: 'router', level: env.LOG_LEVEL, format: env.LOG_FORMAT });
  const production = env.NODE_ENV === 'production';

  const redis = new Redis(env.REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectionName: 'router' });
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis error'));

  // Upload records want a connection that queues while Redis reconnects (the rate limiter's fails fast).
  const queueRedis = new Redis(env.REDIS_URL, { maxRetriesPerRequest: 3, connectionName: 'router-uploads' });
  queueRedis.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  const events = await createTaskEventStream(bullConnection(env.REDIS_URL), (err) => log.error({ err }, 'task event stream error'));
  // One subscriber connection for every answer streamed by this router (it resubscribes after a reconnect).
  const answerSubscriber = new Redis(env.REDIS_URL, { maxRetriesPerRequest: 1, connectionName: 'router-answers' });
  answerSubscriber.on('error', (err) => log.warn({ err: err.message }, 'redis error (answer events)'));
  const answerHub = createAnswerHub(answerSubscriber);

  const router = await startRouter({
    events,
    answers: {
      hub: answerHub,
      readHistory: (messageId) => readAnswerHistory(redis, messageId),
      readStart: (messageId) => readAnswerStart(redis, messageId),
      recheckMs: env.ANSWER_RECHECK_MS,
    },
    uploads: {
      blobStore: createLocalBlobStore(env.BLOB_DIR),
      redis: queueRedis,
      maxBytes: env.UPLOAD_MAX_BYTES,
      ttlS: env.UPLOAD_TTL_S,
      dailyBytesPerUser: env.UPLOAD_DAILY_BYTES_PER_USER,
    },
    fileUrlSecret: env.FILE_URL_SECRET,
    subscriptionLimits: {
      maxConnectionsPerUser: env.WS_MAX_CONNECTIONS_PER_USER,
      maxSubscriptionsPerConnection: env.WS_MAX_SUBSCRIPTIONS_PER_CONNECTION,
      taskRecheckMs: env.TASK_RECHECK_MS,
    },
    host: env.HOST,
    port: env.PORT,
    opsPort: env.OPS_PORT,
    queryLimits: {
      maxTokens: env.QUERY_MAX_TOKENS,
      maxDepth: env.QUERY_MAX_DEPTH,
      maxAliases: env.QUERY_MAX_ALIASES,
      maxDirectives: env.QUERY_MAX_DIRECTIVES,
      maxCost: env.QUERY_MAX_COST,
      costPerPoint: env.RATE_LIMIT_COST_PER_POINT,
    },
    production,
    introspection: env.INTROSPECTION ?? !production,
    supergraphPath: env.SUPERGRAPH_PATH,
    supergraphPollMs: env.SUPERGRAPH_POLL_MS,
    subgraphUrls: { rag: env.SUBGRAPH_RAG_URL, chat: env.SUBGRAPH_CHAT_URL, exam: env.SUBGRAPH_EXAM_URL, tasks: env.SUBGRAPH_TASKS_URL },
    subgraphTimeoutMs: (name) =>
      ({
        rag: env.SUBGRAPH_RAG_TIMEOUT_MS,
        chat: env.SUBGRAPH_CHAT_TIMEOUT_MS,
        exam: env.SUBGRAPH_EXAM_TIMEOUT_MS,
        tasks: env.SUBGRAPH_TASKS_TIMEOUT_MS,
      })[name] ?? env.SUBGRAPH_TIMEOUT_MS,
    subgraphHealthIntervalMs: env.SUBGRAPH_HEALTH_INTERVAL_MS,
    corsOrigins: env.CORS_ORIGINS,
    sandboxToken: env.SANDBOX_DEV_TOKEN,
    maxBodyBytes: env.MAX_BODY_BYTES,
    maxInFlight: env.MAX_IN_FLIGHT,
    drainDelayMs: env.DRAIN_DELAY_MS,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    log,
    metrics: createMetrics('router'),
    authenticator: createAuthenticator({
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      algorithms: env.JWT_ALGORITHMS,
      jwksUrl: env.JWT_JWKS_URL,
      jwks: env.JWT_JWKS,
      roleClaim: env.JWT_ROLE_CLAIM,
      defaultRole: env.JWT_DEFAULT_ROLE,
      clockToleranceS: env.JWT_CLOCK_TOLERANCE_S,
    }),
    rateLimiter: createRateLimiter(redis, {
      windowS: env.RATE_LIMIT_WINDOW_S,
      perRole: { STUDENT: env.RATE_LIMIT_STUDENT, TEACHER: env.RATE_LIMIT_TEACHER, ADMIN: env.RATE_LIMIT_ADMIN },
    }),
    signer: await createAssertionSigner(env.INTERNAL_JWT_PRIVATE_JWK),
    checks: { redis: () => redis.ping() },
    // After the WebSocket server: no subscription listens any more.
    closeSteps: [{ name: 'redis', run: () => Promise.all([events.close(), answerHub.close(), redis.quit(), queueRedis.quit()]) }],
  });
  log.info({ url: router.url, opsUrl: router.opsUrl }, 'router ready');
}

runMain(main);
