import { z } from 'zod';
import { envParts, parseEnv, processEnv } from '@lib/env.js';
import { checkRetrievalEnv, retrievalEnv } from '@lib/search/env.js';
import { chatEnv, checkChatEnv } from '@lib/model/config.js';

const schema = z
  .object({
    NODE_ENV: envParts.nodeEnv,
    HOST: envParts.host,
    /** /health, /ready and /metrics. */
    PORT: envParts.port(4010),
    LOG_LEVEL: envParts.logLevel,
    LOG_FORMAT: envParts.logFormat,
    DATABASE_URL: envParts.url,
    DB_POOL_MAX: envParts.positiveInt(5),
    REDIS_URL: envParts.url,
    BLOB_DIR: z.string().min(1).default('.data/blobs'),

    WORKER_CONCURRENCY: envParts.positiveInt(2),
    /** How long a job's lock lasts without renewal; a crashed worker's job is taken over after about this. */
    WORKER_LOCK_DURATION_MS: envParts.ms(30_000),
    WORKER_STALLED_INTERVAL_MS: envParts.ms(30_000),
    RECONCILE_INTERVAL_MS: envParts.ms(30_000),
    /** Must match the router's: uploads older than this (plus an hour) that no document uses are deleted. */
    UPLOAD_TTL_S: envParts.positiveInt(24 * 3600),

    INGEST_MAX_PAGES: envParts.positiveInt(2000),
    INGEST_MAX_CHARS: envParts.positiveInt(20_000_000),
    PARSE_TIMEOUT_MS: envParts.ms(180_000),
    PARSE_MEMORY_MB: envParts.positiveInt(1024),
    CHUNK_TARGET_CHARS: envParts.positiveInt(1200),
    CHUNK_OVERLAP_CHARS: z.coerce.number().int().min(0).default(200),
    /** Least time between two progress writes for one task. */
    PROGRESS_INTERVAL_MS: envParts.ms(250),

    /** Answers written at once by this process (model calls are mostly waiting). */
    ANSWER_CONCURRENCY: envParts.positiveInt(8),
    /** A crashed worker's answer is taken over after about this long. */
    ANSWER_LOCK_DURATION_MS: envParts.ms(10_000),
    /** Passages retrieved for an answer. */
    ANSWER_PASSAGES: z.coerce.number().int().min(1).max(20).default(6),
    /** Conversation history given to the model, in approximate tokens. */
    ANSWER_HISTORY_TOKENS: envParts.positiveInt(1500),
    /** Text is published in pieces gathered for this long (0: every piece at once). */
    ANSWER_FLUSH_MS: z.coerce.number().int().min(0).max(1000).default(20),
    /** GENERATING answers older than this whose job is gone are queued again or failed. */
    ANSWER_STALE_MS: envParts.ms(120_000),
    /** How long an answer stays in the answer cache; 0 turns the cache off. */
    LLM_CACHE_TTL_S: z.coerce
      .number()
      .int()
      .min(0)
      .default(24 * 3600),
    /** Model tokens one user may spend per UTC day (counted here; the chat subgraph refuses past it). */
    LLM_DAILY_TOKENS_PER_USER: z.coerce.number().int().min(0).default(200_000),
    /** The answer cache may live in a Redis that evicts; defaults to REDIS_URL. */
    CACHE_REDIS_URL: envParts.url.optional(),

    SHUTDOWN_TIMEOUT_MS: envParts.ms(30_000),
    ...retrievalEnv,
    ...chatEnv,
  })
  .superRefine((env, ctx) => {
    checkRetrievalEnv(env, ctx);
    checkChatEnv(env, ctx);
  });

export type WorkerEnv = z.infer<typeof schema>;

export function readEnv(source = processEnv()): WorkerEnv {
  return parseEnv(schema, source);
}
