import type { Prisma, PrismaClient } from '../db/client.js';
import type { Logger } from '../logger.js';
import { createDenseEmbedder } from './dense.js';
import { createEmbeddedStore, type EmbeddedSearchQuery, type EmbeddedStore } from './embedded.js';
import type { RetrievalEnv } from './env.js';
import { createLexicalEmbedder, termId, tokenize } from './lexical.js';
import { collectionFor, createQdrantStore } from './qdrant.js';
import type { ChunkPoint, DenseEmbedder, ScoredChunk, VectorStore } from './types.js';

export interface ChunkText {
  id: string;
  position: number;
  text: string;
}

export interface Retrieval {
  store: VectorStore;
  dense: DenseEmbedder | null;
  /** Vectors for a document's chunks (dense ones in batches, reporting progress). */
  pointsFor(
    courseId: string,
    documentId: string,
    chunks: ChunkText[],
    onProgress?: (done: number, total: number) => void,
  ): Promise<ChunkPoint[]>;
  /** Writes them: inside `tx` for the embedded store (atomic with the chunks), to Qdrant otherwise. */
  write(tx: Prisma.TransactionClient | null, courseId: string, documentId: string, points: ChunkPoint[]): Promise<void>;
  /** `searchVersion`: the course's, when the caller has read it (the embedded store then need not). */
  search(args: {
    courseId: string;
    query: string;
    limit: number;
    documentIds?: string[] | undefined;
    searchVersion?: number | undefined;
  }): Promise<ScoredChunk[]>;
}

/**
 * Builds the configured store and embedders. The rag subgraph and the workers build the same.
 * `SEARCH_INDEX_MAX_BYTES` (the rag subgraph's; others get the default): memory for the embedded
 * store's in-memory BM25 indexes.
 */
export async function createRetrieval(
  prisma: PrismaClient,
  env: RetrievalEnv & { SEARCH_INDEX_MAX_BYTES?: number | undefined },
  log: Logger,
): Promise<Retrieval> {
  const embedder = (patience: { maxRetries: number; timeoutMs: number }) =>
    env.EMBEDDINGS_URL && env.EMBEDDINGS_MODEL && env.EMBEDDINGS_DIMENSIONS
      ? createDenseEmbedder({
          baseUrl: env.EMBEDDINGS_URL,
          ...(env.EMBEDDINGS_API_KEY ? { apiKey: env.EMBEDDINGS_API_KEY } : {}),
          model: env.EMBEDDINGS_MODEL,
          dimensions: env.EMBEDDINGS_DIMENSIONS,
          log,
          ...patience,
        })
      : null;
  // Indexing can wait for a busy endpoint; a student's search cannot: it falls back to BM25 alone.
  const dense = embedder({ maxRetries: 5, timeoutMs: 60_000 });
  const queryDense = embedder({ maxRetries: 1, timeoutMs: 3_000 });
  const denseSpace = dense ? { model: dense.model, dimensions: dense.dimensions } : null;
  const store: VectorStore =
    env.VECTOR_STORE === 'qdrant'
      ? createQdrantStore({
          url: env.QDRANT_URL!,
          ...(env.QDRANT_API_KEY ? { apiKey: env.QDRANT_API_KEY } : {}),
          collection: collectionFor(env.QDRANT_COLLECTION, denseSpace),
          shardNumber: env.QDRANT_SHARDS,
          replicationFactor: env.QDRANT_REPLICATION_FACTOR,
          writeConsistencyFactor: env.QDRANT_WRITE_CONSISTENCY_FACTOR,
          log,
        })
      : createEmbeddedStore(prisma, { indexMaxBytes: env.SEARCH_INDEX_MAX_BYTES, log });
  await store.ensureReady(denseSpace);
  log.info({ store: store.kind, dense: denseSpace }, 'retrieval ready');

  /** Qdrant's sparse weights need an average chunk length: the course's, measured. */
  const averageLength = async (courseId: string, extra: { tokens: number; chunks: number }) => {
    const [row] = await prisma.$queryRaw<{ tokens: number; chunks: number }[]>`
      SELECT coalesce(sum("tokenCount"), 0)::float8 AS tokens, count(*)::float8 AS chunks FROM "Chunk" WHERE "courseId" = ${courseId}::uuid`;
    const chunks = (row?.chunks ?? 0) + extra.chunks;
    return chunks > 0 ? Math.max(1, ((row?.tokens ?? 0) + extra.tokens) / chunks) : 256;
  };

  return {
    store,
    dense,
    async pointsFor(courseId, documentId, chunks, onProgress) {
      const tokens = chunks.map((c) => tokenize(c.text));
      const total = tokens.reduce((s, t) => s + t.length, 0);
      const avgLen = store.kind === 'qdrant' ? await averageLength(courseId, { tokens: total, chunks: chunks.length }) : 256;
      const sparse = createLexicalEmbedder({ avgLen }).embedDocuments(chunks.map((c) => c.text));
      const vectors: number[][] = [];
      if (dense) {
        const batch = 64;
        for (let i = 0; i < chunks.length; i += batch) {
          vectors.push(
            ...(await dense.embed(
              chunks.slice(i, i + batch).map((c) => c.text),
              'document',
            )),
          );
          onProgress?.(Math.min(chunks.length, i + batch), chunks.length);
        }
      }
      return chunks.map((c, i) => {
        const counts = new Map<number, number>();
        for (const token of tokens[i]!) counts.set(termId(token), (counts.get(termId(token)) ?? 0) + 1);
        return {
          id: c.id,
          courseId,
          documentId,
          position: c.position,
          sparse: sparse[i]!,
          terms: { ids: [...counts.keys()], tf: [...counts.values()], length: tokens[i]!.length },
          dense: vectors[i],
        };
      });
    },
    async write(tx, courseId, documentId, points) {
      if (store.kind === 'embedded' && tx) await (store as EmbeddedStore).replaceDocumentIn(tx, courseId, documentId, points);
      else await store.replaceDocument(courseId, documentId, points);
    },
    async search({ courseId, query, limit, documentIds, searchVersion }) {
      const sparse = createLexicalEmbedder().embedQuery(query);
      let vector: number[] | undefined;
      if (queryDense) {
        try {
          vector = (await queryDense.embed([query], 'query'))[0];
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'query embedding failed; searching with BM25 alone');
        }
      }
      const q: EmbeddedSearchQuery = { courseId, sparse, dense: vector, documentIds, limit, searchVersion };
      return store.search(q);
    },
  };
}
