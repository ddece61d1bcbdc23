import { z } from 'zod';
import { envParts, parseEnv, processEnv } from '@lib/env.js';
import { checkRetrievalEnv, retrievalEnv } from '@lib/search/env.js';
import { subgraphEnvSchema } from '@lib/subgraph-env.js';

/** Exported for the deployment checks (tests/deploy): compose passes only these variables. */
export const schema = subgraphEnvSchema(4001)
  .extend({
    /** Queues, task events and upload records (noeviction). */
    REDIS_URL: envParts.url,
    /** Where uploads and pasted texts are kept; shared with the workers. */
    BLOB_DIR: z.string().min(1).default('.data/blobs'),
    /** Search result cache; may be a Redis that evicts (allkeys-lru). Defaults to REDIS_URL. */
    CACHE_REDIS_URL: envParts.url.optional(),
    /** Signs Document.fileUrl links (the router checks them with the same secret). Unset: fileUrl is null. */
    FILE_URL_SECRET: z.string().min(32).optional(),
    /** How long a Document.fileUrl link works, seconds. */
    FILE_URL_TTL_S: z.coerce
      .number()
      .int()
      .min(60)
      .max(7 * 24 * 3600)
      .default(3600),
    /** The public origin clients use (https://teacher.example.edu): fileUrl is absolute with it, a path without. */
    PUBLIC_URL: envParts.url.optional(),
    /** Bytes a user may send per UTC day (pasted texts here, files at the router's POST /uploads); 0: no limit. */
    UPLOAD_DAILY_BYTES_PER_USER: z.coerce
      .number()
      .int()
      .min(0)
      .default(2 * 1024 ** 3),
    /** Bytes of documents (uploaded files and pasted texts) one course may hold; 0: no limit. */
    COURSE_STORAGE_BYTES: z.coerce
      .number()
      .int()
      .min(0)
      .default(5 * 1024 ** 3),
    /** Memory for the embedded store's in-memory BM25 indexes, all courses together (least recently searched dropped first); 0: rank in SQL. */
    SEARCH_INDEX_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(0)
      .default(256 * 1024 ** 2),
    ...retrievalEnv,
  })
  .superRefine(checkRetrievalEnv);
export type RagEnv = z.infer<typeof schema>;

export function readEnv(source = processEnv()): RagEnv {
  return parseEnv(schema, source);
}
