import { z } from 'zod';
import { envParts, parseEnv, processEnv } from '@lib/env.js';
import { checkRetrievalEnv, retrievalEnv } from '@lib/search/env.js';
import { subgraphEnvSchema } from '@lib/subgraph-env.js';

const schema = subgraphEnvSchema(4001)
  .extend({
    /** Queues, task events and upload records (noeviction). */
    REDIS_URL: envParts.url,
    /** Where uploads and pasted texts are kept; shared with the workers. */
    BLOB_DIR: z.string().min(1).default('.data/blobs'),
    /** Search result cache; may be a Redis that evicts (allkeys-lru). Defaults to REDIS_URL. */
    CACHE_REDIS_URL: envParts.url.optional(),
    ...retrievalEnv,
  })
  .superRefine(checkRetrievalEnv);
export type RagEnv = z.infer<typeof schema>;

export function readEnv(source = processEnv()): RagEnv {
  return parseEnv(schema, source);
}
