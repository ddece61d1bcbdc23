/**
 * Retrieval contracts shared by the embedders, the stores, the ingestion worker
 * and the rag subgraph.
 */

/** A sparse vector: term ids (hashed tokens) and their weights, ids unique. */
export interface SparseVector {
  indices: number[];
  values: number[];
}

/** Turns text into sparse BM25 vectors, compatible with Qdrant's `Qdrant/bm25` (IDF applied by the store). */
export interface SparseEmbedder {
  /** Document side: BM25 term-frequency weights with length normalisation. */
  embedDocuments(texts: string[]): SparseVector[];
  /** Query side: weight 1 per distinct term. */
  embedQuery(text: string): SparseVector;
  /** The normalised terms of a text (for highlighting matched terms). */
  terms(text: string): string[];
}

/** An OpenAI-compatible embeddings endpoint. */
export interface DenseEmbedder {
  /** Identifies the vector space: vectors of different models are never compared. */
  readonly model: string;
  readonly dimensions: number;
  embed(texts: string[], kind: 'document' | 'query'): Promise<number[][]>;
}

export interface ChunkPoint {
  /** Chunk id, "<documentId>:<position>". */
  id: string;
  courseId: string;
  documentId: string;
  position: number;
  /** BM25 weights for stores that take precomputed sparse vectors (Qdrant). */
  sparse: SparseVector;
  /** Raw term frequencies and the chunk's length in terms, for stores that score BM25 themselves. */
  terms: { ids: number[]; tf: number[]; length: number };
  dense?: number[] | undefined;
}

export interface SearchQuery {
  courseId: string;
  sparse: SparseVector;
  dense?: number[] | undefined;
  /** Restrict to these documents. */
  documentIds?: string[] | undefined;
  limit: number;
}

/** A chunk's id: its document's and its position in it (the same in PostgreSQL and in Qdrant's payload). */
export const chunkIdOf = (documentId: string, position: number) => `${documentId}:${position}`;
/** The document a chunk id names (chunkIdOf's first part). */
export const documentIdOfChunk = (chunkId: string) => chunkId.slice(0, chunkId.lastIndexOf(':'));

export interface ScoredChunk {
  id: string;
  score: number;
}

/**
 * Where chunk vectors live. Every search is filtered by course; results from
 * the sparse and the dense vector are fused with reciprocal-rank fusion when
 * both are given.
 */
export interface VectorStore {
  readonly kind: 'embedded' | 'qdrant';
  /** Creates collections/indexes if missing; safe to call at every start. `denseModel` null when there is no dense embedder. */
  ensureReady(dense: { model: string; dimensions: number } | null): Promise<void>;
  /** Replaces every point of the document with these (a re-run overwrites, never duplicates). */
  replaceDocument(courseId: string, documentId: string, points: ChunkPoint[]): Promise<void>;
  deleteDocument(courseId: string, documentId: string): Promise<void>;
  search(query: SearchQuery): Promise<ScoredChunk[]>;
}

/**
 * Reciprocal-rank fusion: score = sum of 1 / (RRF_K + rank), rank from 1. Qdrant's default
 * is different (k = 2, position from 0), so the Qdrant store asks for k = RRF_K + 1 explicitly
 * and both stores fuse identically.
 */
export const RRF_K = 60;
