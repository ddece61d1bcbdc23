import { z } from 'zod';
import { envParts, parseEnv, processEnv } from '@lib/env.js';
import { checkRetrievalEnv, retrievalEnv } from '@lib/search/env.js';

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

    SHUTDOWN_TIMEOUT_MS: envParts.ms(30_000),
    ...retrievalEnv,
  })
  .superRefine(checkRetrievalEnv);

export type WorkerEnv = z.infer<typeof schema>;

export function readEnv(source = processEnv()): WorkerEnv {
  return parseEnv(schema, source);
}
