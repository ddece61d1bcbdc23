import { Prisma, type PrismaClient } from '../db/client.js';
import { fuseRrf } from './fusion.js';
import type { ChunkPoint, ScoredChunk, SearchQuery, VectorStore } from './types.js';

type Db = PrismaClient | Prisma.TransactionClient;

export interface EmbeddedStoreOptions {
  k1?: number;
  b?: number;
  /** How many candidates each ranking contributes before fusion. */
  candidates?: number;
}

export interface EmbeddedStore extends VectorStore {
  readonly kind: 'embedded';
  /** The same as replaceDocument, inside the caller's transaction (with the chunk rows). */
  replaceDocumentIn(tx: Db, courseId: string, documentId: string, points: ChunkPoint[]): Promise<void>;
}

/**
 * The store for one machine: an inverted index and dense vectors in the
 * PostgreSQL we already run, written in the same transaction as the chunks.
 * BM25 is scored at query time with the course's own statistics (document
 * frequency per term, number of chunks, average chunk length), the IDF Qdrant
 * uses (ln(1 + (N - n + 0.5) / (n + 0.5))), k1 = 1.2 and b = 0.75; dense
 * vectors by cosine (they are stored normalised); both fused by RRF.
 */
export function createEmbeddedStore(prisma: PrismaClient, opts: EmbeddedStoreOptions = {}): EmbeddedStore {
  const k1 = opts.k1 ?? 1.2;
  const b = opts.b ?? 0.75;
  let denseModel: string | null = null;

  const replaceDocumentIn = async (tx: Db, courseId: string, documentId: string, points: ChunkPoint[]) => {
    await tx.chunkTerm.deleteMany({ where: { documentId } });
    await tx.chunkEmbedding.deleteMany({ where: { documentId } });
    // One INSERT from arrays (unnest) per 50,000 postings: a parameter per column, not per value.
    const termIds: number[] = [];
    const chunkIds: string[] = [];
    const tfs: number[] = [];
    const dls: number[] = [];
    for (const p of points) {
      p.terms.ids.forEach((termId, i) => {
        termIds.push(termId);
        chunkIds.push(p.id);
        tfs.push(Math.min(p.terms.tf[i]!, 32767));
        dls.push(p.terms.length);
      });
    }
    for (let i = 0; i < termIds.length; i += 50_000) {
      const slice = (xs: unknown[]) => xs.slice(i, i + 50_000);
      await tx.$executeRaw`
        INSERT INTO "ChunkTerm" ("courseId", "termId", "chunkId", "documentId", tf, dl)
        SELECT ${courseId}::uuid, t, c, ${documentId}::uuid, f, l
        FROM unnest(${slice(termIds)}::int[], ${slice(chunkIds)}::text[], ${slice(tfs)}::smallint[], ${slice(dls)}::int[]) AS x(t, c, f, l)`;
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

  const lexical = async (q: SearchQuery, limit: number): Promise<ScoredChunk[]> => {
    const terms = [...new Set(q.sparse.indices)];
    if (terms.length === 0) return [];
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
    replaceDocument: (courseId, documentId, points) => prisma.$transaction((tx) => replaceDocumentIn(tx, courseId, documentId, points)),
    async deleteDocument(courseId, documentId) {
      void courseId;
      await prisma.$transaction([
        prisma.chunkTerm.deleteMany({ where: { documentId } }),
        prisma.chunkEmbedding.deleteMany({ where: { documentId } }),
      ]);
    },
    async search(q) {
      const candidates = Math.max(q.limit, opts.candidates ?? 100);
      if (!q.dense || !denseModel) return (await lexical(q, q.limit)).map((r) => ({ id: r.id, score: Number(r.score) }));
      const [lex, den] = await Promise.all([lexical(q, candidates), dense(q, candidates)]);
      return fuseRrf([lex, den]).slice(0, q.limit);
    },
  };
}
