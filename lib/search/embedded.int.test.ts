import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createPrisma, type PrismaClient } from '../db/client.js';
import { testDbUrls } from '../../tests/support/db-urls.js';
import { createEmbeddedStore } from './embedded.js';
import { fuseRrf } from './fusion.js';
import type { ChunkPoint } from './types.js';

const unit = (v: number[]) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};

describe('embedded store (PostgreSQL)', () => {
  let prisma: PrismaClient;
  const store = () => createEmbeddedStore(prisma);
  beforeAll(() => {
    prisma = createPrisma({ url: testDbUrls().pooled });
  });
  afterAll(() => prisma?.$disconnect());

  /** A course with one document whose chunks get the given term frequencies and dense vectors. */
  async function seed(chunks: { name: string; tf: number; length: number; dense: number[] }[]) {
    const courseId = randomUUID();
    const documentId = randomUUID();
    await prisma.course.create({ data: { id: courseId, title: 't', createdBy: 'x' } });
    await prisma.document.create({
      data: {
        id: documentId,
        courseId,
        title: 'd',
        format: 'TEXT',
        sizeBytes: 1,
        sha256: 'x',
        blobKey: 'k',
        uploadedBy: 'x',
        status: 'READY',
      },
    });
    const points: ChunkPoint[] = chunks.map((c, i) => ({
      id: `${documentId}:${i}`,
      courseId,
      documentId,
      position: i,
      sparse: { indices: [], values: [] },
      terms: { ids: c.tf > 0 ? [42, 7] : [7], tf: c.tf > 0 ? [c.tf, 1] : [1], length: c.length },
      dense: unit(c.dense),
    }));
    await prisma.chunk.createMany({
      data: points.map((p, i) => ({
        id: p.id,
        documentId,
        courseId,
        position: i,
        text: chunks[i]!.name,
        pageStart: 1,
        pageEnd: 1,
        charStart: 0,
        charEnd: 1,
        tokenCount: p.terms.length,
      })),
    });
    const s = store();
    await s.ensureReady({ model: 'test-model', dimensions: 3 });
    await s.replaceDocument(courseId, documentId, points);
    const name = (id: string) => chunks[Number(id.split(':')[1])]!.name;
    return { courseId, documentId, s, name, points };
  }

  it('ranks by BM25 with the course’s statistics, and fuses with dense as RRF says', async () => {
    const { courseId, s, name } = await seed([
      { name: 'A', tf: 5, length: 10, dense: [0.1, 0.2, 1] },
      { name: 'B', tf: 3, length: 10, dense: [1, 0, 0] },
      { name: 'C', tf: 1, length: 10, dense: [0.8, 0.6, 0] },
    ]);
    const sparse = { indices: [42], values: [1] };
    const lexical = await s.search({ courseId, sparse, limit: 10 });
    expect(lexical.map((r) => name(r.id))).toEqual(['A', 'B', 'C']);
    expect(lexical[0]!.score).toBeGreaterThan(lexical[1]!.score);

    const dense = unit([1, 0.1, 0]);
    const hybrid = await s.search({ courseId, sparse, dense, limit: 10 });
    // dense alone ranks B, C, A; RRF of [A, B, C] and [B, C, A] is B, A, C.
    expect(hybrid.map((r) => name(r.id))).toEqual(['B', 'A', 'C']);
    const expected = fuseRrf([
      lexical,
      [...lexical].sort((x, y) => ['B', 'C', 'A'].indexOf(name(x.id)) - ['B', 'C', 'A'].indexOf(name(y.id))),
    ]);
    expect(hybrid.map((r) => r.id)).toEqual(expected.map((r) => r.id));
  });

  it('normalises by length: the same tf counts more in a shorter chunk', async () => {
    const { courseId, s, name } = await seed([
      { name: 'long', tf: 2, length: 200, dense: [1, 0, 0] },
      { name: 'short', tf: 2, length: 20, dense: [1, 0, 0] },
    ]);
    const ranked = await s.search({ courseId, sparse: { indices: [42], values: [1] }, limit: 5 });
    expect(ranked.map((r) => name(r.id))).toEqual(['short', 'long']);
  });

  it('never returns another course’s chunks, and replacing a document does not duplicate it', async () => {
    const one = await seed([{ name: 'mine', tf: 1, length: 10, dense: [1, 0, 0] }]);
    const two = await seed([{ name: 'theirs', tf: 9, length: 5, dense: [1, 0, 0] }]);
    const hits = await one.s.search({ courseId: one.courseId, sparse: { indices: [42], values: [1] }, dense: unit([1, 0, 0]), limit: 10 });
    expect(hits.map((h) => h.id)).toEqual([one.points[0]!.id]);
    await one.s.replaceDocument(one.courseId, one.documentId, one.points);
    await one.s.replaceDocument(one.courseId, one.documentId, one.points);
    expect(await prisma.chunkTerm.count({ where: { documentId: one.documentId } })).toBe(2);
    expect(await prisma.chunkEmbedding.count({ where: { documentId: one.documentId } })).toBe(1);
    await one.s.deleteDocument(one.courseId, one.documentId);
    expect(await one.s.search({ courseId: one.courseId, sparse: { indices: [42], values: [1] }, limit: 10 })).toEqual([]);
    expect(await two.s.search({ courseId: two.courseId, sparse: { indices: [42], values: [1] }, limit: 10 })).toHaveLength(1);
  });

  it('compares dense vectors of the current model only', async () => {
    const { courseId, s } = await seed([{ name: 'old-model', tf: 0, length: 10, dense: [1, 0, 0] }]);
    const other = createEmbeddedStore(prisma);
    await other.ensureReady({ model: 'another-model', dimensions: 3 });
    expect(await other.search({ courseId, sparse: { indices: [], values: [] }, dense: unit([1, 0, 0]), limit: 5 })).toEqual([]);
    expect(await s.search({ courseId, sparse: { indices: [], values: [] }, dense: unit([1, 0, 0]), limit: 5 })).toHaveLength(1);
  });
});
