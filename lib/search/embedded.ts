import { Prisma, type PrismaClient } from '../db/client.js';
import { fuseRrf } from './fusion.js';
import { CourseIndexCache, type IndexCacheLogger } from './index-cache.js';
import type { ChunkPoint, ScoredChunk, SearchQuery, VectorStore } from './types.js';

type Db = PrismaClient | Prisma.TransactionClient;

/** Memory for the in-memory BM25 indexes of one process, all courses together, unless configured. */
export const DEFAULT_INDEX_MAX_BYTES = 256 * 1024 ** 2;

export interface EmbeddedStoreOptions {
  k1?: number;
  b?: number;
  /** How many candidates each ranking contributes before fusion. */
  candidates?: number;
  /** Bytes for the in-memory BM25 indexes (all courses; least recently searched dropped first). 0: always rank in SQL. */
  indexMaxBytes?: number;
  /** How long a search waits for its course's index to load or refresh before ranking in SQL. Default 250 ms. */
  indexWaitMs?: number;
  log?: IndexCacheLogger | undefined;
}

/** A search, with the course's `searchVersion` when the caller has already read it (saves a query). */
export interface EmbeddedSearchQuery extends SearchQuery {
  searchVersion?: number | undefined;
}

export interface EmbeddedStore extends VectorStore {
  readonly kind: 'embedded';
  /** The same as replaceDocument, inside the caller's transaction (with the chunk rows). */
  replaceDocumentIn(tx: Db, courseId: string, documentId: string, points: ChunkPoint[]): Promise<void>;
  /**
   * Adds postings (and vectors) of some of a document's chunks, inside the caller's transaction:
   * a document written in batches as it is read, after its old chunks were deleted (their
   * postings and vectors go with them).
   */
  /**
   * Writes the points' postings (and dense vectors) in the caller's transaction. `alongside`: a
   * data-modifying statement (the chunks' INSERT) sent as a WITH clause of the first postings
   * statement, one round trip for both (postings have no foreign key to their chunk).
   */
  appendIn(tx: Db, courseId: string, documentId: string, points: ChunkPoint[], alongside?: Prisma.Sql): Promise<void>;
  search(query: EmbeddedSearchQuery): Promise<ScoredChunk[]>;
  /** Loads or refreshes the course's in-memory index now; null when it is off or the course does not fit. */
  warmIndex(courseId: string): Promise<{ version: number; chunks: number; postings: number; bytes: number } | null>;
  /** Courses and bytes held by the in-memory indexes. */
  indexStats(): { courses: number; bytes: number };
}

/** Between chunk ids when a batch of postings travels as one string (never in an id). */
const SEPARATOR = '\u001f';

/**
 * The store for one machine: an inverted index and dense vectors in the
 * PostgreSQL we already run, written in the same transaction as the chunks.
 * BM25 is scored at query time with the course's own statistics (document
 * frequency per term, number of chunks, average chunk length), the IDF Qdrant
 * uses (ln(1 + (N - n + 0.5) / (n + 0.5))), k1 = 1.2 and b = 0.75; dense
 * vectors by cosine (they are stored normalised); both fused by RRF.
 *
 * BM25 is ranked from an in-memory copy of the course's postings (lib/search/index-cache.ts),
 * kept in step with the database by `Course.searchVersion`, with the same results as the SQL
 * below; the SQL ranks while a course's copy loads, when it does not fit, or when the copy is off.
 */
export function createEmbeddedStore(prisma: PrismaClient, opts: EmbeddedStoreOptions = {}): EmbeddedStore {
  const k1 = opts.k1 ?? 1.2;
  const b = opts.b ?? 0.75;
  let denseModel: string | null = null;
  const indexes = new CourseIndexCache(prisma, {
    maxBytes: opts.indexMaxBytes ?? DEFAULT_INDEX_MAX_BYTES,
    waitMs: opts.indexWaitMs ?? 250,
    log: opts.log,
  });

  const appendIn = async (tx: Db, courseId: string, documentId: string, points: ChunkPoint[], alongside?: Prisma.Sql) => {
    // Other processes see the change by the version the caller bumps in this transaction.
    indexes.invalidate(courseId);
    // In the primary key's order (course, term, chunk): inserts then touch neighbouring index pages,
    // about a third faster than in chunk order for a book's 70,000 postings.
    const postings: { termId: number; chunkId: string; tf: number; dl: number }[] = [];
    for (const p of points) {
      if (p.id.includes(SEPARATOR)) throw new Error(`chunk id ${JSON.stringify(p.id)} contains the postings separator`);
      p.terms.ids.forEach((termId, i) => postings.push({ termId, chunkId: p.id, tf: Math.min(p.terms.tf[i]!, 32767), dl: p.terms.length }));
    }
    postings.sort((x, y) => x.termId - y.termId || (x.chunkId < y.chunkId ? -1 : x.chunkId > y.chunkId ? 1 : 0));
    // One INSERT per 50,000 postings, each column as one string that PostgreSQL splits
    // (string_to_array): as arrays, each of a book's 290,000 values was serialised by the driver and
    // passed through Prisma's query engine, ~0.5 s of the worker's CPU; as four strings, ~20 ms.
    if (alongside && postings.length === 0) await tx.$executeRaw(alongside);
    for (let i = 0; i < postings.length; i += 50_000) {
      const slice = postings.slice(i, i + 50_000);
      const column = (f: (p: (typeof slice)[number]) => string | number, sep = ',') => slice.map(f).join(sep);
      await tx.$executeRaw`
        ${i === 0 && alongside ? Prisma.sql`WITH alongside AS (${alongside})` : Prisma.empty}
        INSERT INTO "ChunkTerm" ("courseId", "termId", "chunkId", "documentId", tf, dl)
        SELECT ${courseId}::uuid, t, c, ${documentId}::uuid, f, l
        FROM unnest(string_to_array(${column((p) => p.termId)}, ',')::int[],
                    string_to_array(${column((p) => p.chunkId, SEPARATOR)}, ${SEPARATOR}),
                    string_to_array(${column((p) => p.tf)}, ',')::smallint[],
                    string_to_array(${column((p) => p.dl)}, ',')::int[]) AS x(t, c, f, l)`;
    }
    const dense = points.filter((p) => p.dense);
    if (dense.length && denseModel) {
      for (let i = 0; i < dense.length; i += 500) {
        await tx.chunkEmbedding.createMany({
          data: dense.slice(i, i + 500).map((p) => ({ chunkId: p.id, courseId, documentId, model: denseModel!, vector: p.dense! })),
        });
      }
    }
  };

  const replaceDocumentIn = async (tx: Db, courseId: string, documentId: string, points: ChunkPoint[]) => {
    indexes.invalidate(courseId);
    await tx.chunkTerm.deleteMany({ where: { documentId } });
    await tx.chunkEmbedding.deleteMany({ where: { documentId } });
    await appendIn(tx, courseId, documentId, points);
  };

  const lexical = async (q: EmbeddedSearchQuery, limit: number): Promise<ScoredChunk[]> => {
    const terms = [...new Set(q.sparse.indices)];
    if (terms.length === 0) return [];
    if (indexes.enabled) {
      const version = q.searchVersion ?? (await searchVersion(q.courseId));
      const index = version === null ? null : await indexes.get(q.courseId, version);
      if (index) return index.search(terms, limit, { k1, b }, q.documentIds);
    }
    return lexicalInSql(q, terms, limit);
  };

  const searchVersion = async (courseId: string) => {
    const [row] = await prisma.$queryRaw<
      { version: number }[]
    >`SELECT "searchVersion" AS version FROM "Course" WHERE id = ${courseId}::uuid`;
    return row ? row.version : null;
  };

  /** BM25 in SQL: the reference the in-memory index reproduces. */
  const lexicalInSql = async (q: SearchQuery, terms: number[], limit: number): Promise<ScoredChunk[]> => {
    const docFilter = q.documentIds?.length ? Prisma.sql`AND t."documentId" = ANY(${q.documentIds}::uuid[])` : Prisma.empty;
    return prisma.$queryRaw<ScoredChunk[]>`
      WITH stats AS (
        SELECT count(*)::float8 AS n, greatest(coalesce(avg("tokenCount"), 1), 1)::float8 AS avgdl
        FROM "Chunk" WHERE "courseId" = ${q.courseId}::uuid
      ), df AS (
        SELECT "termId", count(*)::float8 AS n FROM "ChunkTerm"
        WHERE "courseId" = ${q.courseId}::uuid AND "termId" = ANY(${terms}::int[]) GROUP BY "termId"
      )
      SELECT t."chunkId" AS id,
        sum(ln(1 + (stats.n - df.n + 0.5) / (df.n + 0.5)) * t.tf * ${k1 + 1}::float8 / (t.tf + ${k1}::float8 * (1 - ${b}::float8 + ${b}::float8 * t.dl / stats.avgdl)))::float8 AS score
      FROM "ChunkTerm" t JOIN df ON df."termId" = t."termId" CROSS JOIN stats
      WHERE t."courseId" = ${q.courseId}::uuid AND t."termId" = ANY(${terms}::int[]) ${docFilter}
      GROUP BY t."chunkId"
      ORDER BY score DESC, t."chunkId"
      LIMIT ${limit}`;
  };

  const dense = async (q: SearchQuery, limit: number): Promise<ScoredChunk[]> => {
    if (!q.dense || !denseModel) return [];
    const docFilter = q.documentIds?.length ? Prisma.sql`AND e."documentId" = ANY(${q.documentIds}::uuid[])` : Prisma.empty;
    return prisma.$queryRaw<ScoredChunk[]>`
      SELECT e."chunkId" AS id,
        (SELECT sum(a * q) FROM unnest(e.vector, ${q.dense}::real[]) AS v(a, q))::float8 AS score
      FROM "ChunkEmbedding" e
      WHERE e."courseId" = ${q.courseId}::uuid AND e.model = ${denseModel} ${docFilter}
      ORDER BY score DESC, e."chunkId"
      LIMIT ${limit}`;
  };

  return {
    kind: 'embedded',
    async ensureReady(d) {
      // Model and size together name the vector space: a change of either is a new space.
      denseModel = d ? `${d.model}@${d.dimensions}` : null;
    },
    replaceDocumentIn,
    appendIn,
    async replaceDocument(courseId, documentId, points) {
      await prisma.$transaction((tx) => replaceDocumentIn(tx, courseId, documentId, points));
      indexes.invalidate(courseId);
    },
    async deleteDocument(courseId, documentId) {
      await prisma.$transaction([
        prisma.chunkTerm.deleteMany({ where: { documentId } }),
        prisma.chunkEmbedding.deleteMany({ where: { documentId } }),
      ]);
      indexes.invalidate(courseId);
    },
    async warmIndex(courseId) {
      const index = await indexes.warm(courseId);
      return index && { version: index.version, chunks: index.chunkCount, postings: index.postings, bytes: index.bytes };
    },
    indexStats: () => indexes.stats(),
    async search(q) {
      const candidates = Math.max(q.limit, opts.candidates ?? 100);
      if (!q.dense || !denseModel) return (await lexical(q, q.limit)).map((r) => ({ id: r.id, score: Number(r.score) }));
      const [lex, den] = await Promise.all([lexical(q, candidates), dense(q, candidates)]);
      return fuseRrf([lex, den]).slice(0, q.limit);
    },
  };
}
