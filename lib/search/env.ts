import { z } from 'zod';
import { envParts } from '../env.js';
import { checkEmbeddingsEnv, embeddingsEnv, type EmbeddingsEnv } from '../model/config.js';

/** Retrieval settings, read by the rag subgraph (search) and the workers (indexing): they must agree. */
export const retrievalEnv = {
  /** embedded: PostgreSQL, no other server (the default); qdrant: a Qdrant cluster. */
  VECTOR_STORE: z.enum(['embedded', 'qdrant']).default('embedded'),
  QDRANT_URL: z.string().url().optional(),
  QDRANT_API_KEY: z.string().optional(),
  QDRANT_COLLECTION: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .default('chunks'),
  QDRANT_SHARDS: envParts.positiveInt(1),
  QDRANT_REPLICATION_FACTOR: envParts.positiveInt(1),
  QDRANT_WRITE_CONSISTENCY_FACTOR: envParts.positiveInt(1),
  /** EMBEDDINGS_URL, EMBEDDINGS_API_KEY, EMBEDDINGS_MODEL, EMBEDDINGS_DIMENSIONS: see lib/model/config.ts. */
  ...embeddingsEnv,
};

export interface RetrievalEnv extends EmbeddingsEnv {
  VECTOR_STORE: 'embedded' | 'qdrant';
  QDRANT_URL?: string | undefined;
  QDRANT_API_KEY?: string | undefined;
  QDRANT_COLLECTION: string;
  QDRANT_SHARDS: number;
  QDRANT_REPLICATION_FACTOR: number;
  QDRANT_WRITE_CONSISTENCY_FACTOR: number;
}

/** Cross-field rules, for a schema's superRefine. */
export function checkRetrievalEnv(env: RetrievalEnv, ctx: z.RefinementCtx) {
  if (env.VECTOR_STORE === 'qdrant' && !env.QDRANT_URL)
    ctx.addIssue({ code: 'custom', path: ['QDRANT_URL'], message: 'required when VECTOR_STORE=qdrant' });
  checkEmbeddingsEnv(env, ctx);
}
