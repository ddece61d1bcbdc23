import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createPrisma, type PrismaClient } from '../db/client.js';
import { testDbUrls } from '../../tests/support/db-urls.js';
import { createEmbeddedStore, type EmbeddedStore } from './embedded.js';
import { fuseRrf } from './fusion.js';
import type { ChunkPoint, ScoredChunk, SearchQuery } from './types.js';

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

  it('deletes a document’s postings with the document, and a course’s with the course (no foreign key to Chunk)', async () => {
    const one = await seed([
      { name: 'a', tf: 1, length: 10, dense: [1, 0, 0] },
      { name: 'b', tf: 2, length: 10, dense: [1, 0, 0] },
    ]);
    const two = await seed([{ name: 'c', tf: 1, length: 10, dense: [1, 0, 0] }]);
    expect(await prisma.chunkTerm.count({ where: { documentId: one.documentId } })).toBe(4);
    await prisma.document.delete({ where: { id: one.documentId } });
    expect(await prisma.chunkTerm.count({ where: { documentId: one.documentId } })).toBe(0);
    expect(await prisma.chunkTerm.count({ where: { courseId: two.courseId } })).toBe(2);
    await prisma.course.delete({ where: { id: two.courseId } });
    expect(await prisma.chunkTerm.count({ where: { courseId: two.courseId } })).toBe(0);
  });

  it('compares dense vectors of the current model only', async () => {
    const { courseId, s } = await seed([{ name: 'old-model', tf: 0, length: 10, dense: [1, 0, 0] }]);
    const other = createEmbeddedStore(prisma);
    await other.ensureReady({ model: 'another-model', dimensions: 3 });
    expect(await other.search({ courseId, sparse: { indices: [], values: [] }, dense: unit([1, 0, 0]), limit: 5 })).toEqual([]);
    expect(await s.search({ courseId, sparse: { indices: [], values: [] }, dense: unit([1, 0, 0]), limit: 5 })).toHaveLength(1);
  });

  describe('in-memory BM25 index', () => {
    /** Deterministic pseudo-random numbers (mulberry32). */
    const rng = (seed: number) => {
      let a = seed >>> 0;
      return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = Math.imul(a ^ (a >>> 15), 1 | a);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    };
    // Term ids like real ones (hashes up to 2^31), common ones first.
    const VOCABULARY = Array.from({ length: 300 }, (_, i) => (i * 2_654_435_761) % 2_147_483_647);
    const reference = () => createEmbeddedStore(prisma, { indexMaxBytes: 0 });

    async function addDocument(courseId: string, rand: () => number, chunks: number, writer: EmbeddedStore) {
      const documentId = randomUUID();
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
      const points: ChunkPoint[] = [];
      for (let i = 0; i < chunks; i++) {
        const counts = new Map<number, number>();
        const previous = points[points.length - 1];
        if (previous && rand() < 0.15) {
          // The same terms as the chunk before: the same score, ranked by id.
          previous.terms.ids.forEach((t, j) => counts.set(t, previous.terms.tf[j]!));
        } else if (rand() > 0.05) {
          for (let w = 1 + Math.floor(rand() * 40); w > 0; w--) {
            const term = VOCABULARY[Math.floor(VOCABULARY.length * rand() ** 3)]!;
            counts.set(term, (counts.get(term) ?? 0) + 1);
          }
        } // else a chunk without terms (it still counts in N)
        const length = [...counts.values()].reduce((a, f) => a + f, 0);
        points.push({
          id: `${documentId}:${i}`,
          courseId,
          documentId,
          position: i,
          sparse: { indices: [], values: [] },
          terms: { ids: [...counts.keys()], tf: [...counts.values()], length },
        });
      }
      await prisma.chunk.createMany({
        data: points.map((p) => ({
          id: p.id,
          documentId,
          courseId,
          position: p.position,
          text: 'x',
          pageStart: 1,
          pageEnd: 1,
          charStart: 0,
          charEnd: 1,
          tokenCount: p.terms.length,
        })),
      });
      await writer.replaceDocument(courseId, documentId, points);
      return documentId;
    }

    async function syntheticCourse(seed: number, documents: number, chunks: number) {
      const courseId = randomUUID();
      await prisma.course.create({ data: { id: courseId, title: 'synthetic', createdBy: 'x' } });
      const rand = rng(seed);
      const documentIds: string[] = [];
      for (let d = 0; d < documents; d++) documentIds.push(await addDocument(courseId, rand, chunks, reference()));
      return { courseId, documentIds, rand };
    }

    const query = (rand: () => number) => ({
      indices: Array.from({ length: 1 + Math.floor(rand() * 4) }, () =>
        rand() < 0.05 ? 999_999_937 : VOCABULARY[Math.floor(VOCABULARY.length * rand() ** 2)]!,
      ),
      values: [],
    });

    /**
     * The SQL ranking as it means to rank: PostgreSQL adds a chunk's terms in whatever order its plan
     * delivers them (a sort by chunk id is not stable), so two chunks with the same terms can differ in
     * the last bit and swap. Scores within 1e-12 of each other are one tie, ordered by chunk id.
     */
    function canonical(all: ScoredChunk[], limit: number): ScoredChunk[] {
      const out: ScoredChunk[] = [];
      for (let i = 0; i < all.length && out.length < limit;) {
        let j = i + 1;
        while (j < all.length && all[j - 1]!.score - all[j]!.score <= 1e-12 * all[j - 1]!.score) j++;
        out.push(...all.slice(i, j).sort((x, y) => (x.id < y.id ? -1 : 1)));
        i = j;
      }
      return out.slice(0, limit);
    }

    /** Same chunks in the same order, scores equal but for the last bits (ln, the average length, the order of the sum). */
    async function expectSameRanking(got: ScoredChunk[], search: SearchQuery) {
      const expected = canonical(await reference().search({ ...search, limit: 100_000 }), search.limit);
      expect(got.map((r) => r.id)).toEqual(expected.map((r) => r.id));
      got.forEach((r, i) => expect(Math.abs(r.score - expected[i]!.score)).toBeLessThanOrEqual(1e-12 * expected[i]!.score));
    }

    it('ranks exactly as the SQL ranking: same top-k and scores, ties by id, document filters, one course only', async () => {
      const one = await syntheticCourse(1, 6, 60);
      // Another course with the same terms and very different statistics must change nothing.
      const other = await syntheticCourse(2, 2, 200);
      let queries = 0;
      const count = () => queries++;
      const counting = createPrisma({ url: testDbUrls().pooled, logQueries: true, log: { debug: count, warn: count, error: count } });
      try {
        const index = createEmbeddedStore(counting, { indexWaitMs: Infinity });
        expect(await index.warmIndex(one.courseId)).toMatchObject({ chunks: 360 });
        const [{ searchVersion }] = [await prisma.course.findUniqueOrThrow({ where: { id: one.courseId } })];
        const rand = rng(7);
        let ties = 0;
        for (let q = 0; q < 300; q++) {
          const documentIds =
            q % 4 === 1
              ? [one.documentIds[0]!, one.documentIds[3]!]
              : q % 4 === 2
                ? [one.documentIds[2]!, other.documentIds[0]!]
                : undefined;
          const search = { courseId: one.courseId, sparse: query(rand), limit: [1, 3, 10, 100, 1000][q % 5]!, documentIds };
          const before = queries;
          const got = await index.search({ ...search, searchVersion });
          expect(queries).toBe(before); // ranked in memory: not one query
          await expectSameRanking(got, search);
          for (const r of got) expect(r.id.startsWith(other.documentIds[0]!)).toBe(false);
          ties += got.filter((r, i) => i > 0 && r.score === got[i - 1]!.score).length;
        }
        expect(ties).toBeGreaterThan(10); // the ties were exercised
        // Without the version the store reads it (one query), and ranks in memory all the same.
        const before = queries;
        const search = { courseId: one.courseId, sparse: query(rand), limit: 10 };
        const got = await index.search(search);
        expect(queries).toBe(before + 1);
        await expectSameRanking(got, search);
        expect(index.indexStats()).toMatchObject({ courses: 1 });
      } finally {
        await counting.$disconnect();
      }
    }, 120_000);

    it('follows Course.searchVersion: a change made elsewhere is seen at the next version, unchanged documents kept', async () => {
      const { courseId, documentIds, rand } = await syntheticCourse(3, 4, 30);
      const loads: object[] = [];
      const log = { info: (o: object) => loads.push(o), warn: () => {} };
      const replica = createEmbeddedStore(prisma, { indexWaitMs: Infinity, log }); // this process's view
      const elsewhere = reference(); // another replica or a worker
      const search = (version?: number) => ({ courseId, sparse: query(rng(11)), limit: 50, searchVersion: version });
      await replica.warmIndex(courseId);
      const before = await replica.search(search(0));
      await expectSameRanking(before, search());

      // A worker ingests a document, and re-indexes another (new postings), each bumping the version.
      const added = await addDocument(courseId, rand, 25, elsewhere);
      await prisma.course.update({ where: { id: courseId }, data: { searchVersion: { increment: 1 } } });
      await prisma.$transaction(async (tx) => {
        const rows = await tx.chunkTerm.findMany({ where: { documentId: documentIds[1]! } });
        const byChunk = new Map<string, { ids: number[]; tf: number[]; length: number }>();
        for (const r of rows) {
          const t = byChunk.get(r.chunkId) ?? { ids: [], tf: [], length: r.dl };
          t.ids.push(r.termId);
          t.tf.push(r.tf + 1); // different frequencies
          byChunk.set(r.chunkId, t);
        }
        const points = [...byChunk].map(([id, terms]) => ({
          id,
          courseId,
          documentId: documentIds[1]!,
          position: 0,
          sparse: { indices: [], values: [] },
          terms,
        }));
        await elsewhere.replaceDocumentIn(tx, courseId, documentIds[1]!, points);
        await tx.course.update({ where: { id: courseId }, data: { searchVersion: { increment: 1 } } });
      });
      // A teacher deletes a document (its chunks and postings go with it).
      await prisma.$transaction([
        prisma.document.delete({ where: { id: documentIds[2]! } }),
        prisma.course.update({ where: { id: courseId }, data: { searchVersion: { increment: 1 } } }),
      ]);
      const { searchVersion } = await prisma.course.findUniqueOrThrow({ where: { id: courseId } });
      expect(searchVersion).toBe(3);

      // A search that read the old version gets the index of that version (as the result cache would)…
      expect(await replica.search(search(0))).toEqual(before);
      // …one at the new version refreshes it first, reading again only the documents that changed.
      await expectSameRanking(await replica.search(search(searchVersion)), search());
      expect(loads.at(-1)).toMatchObject({ version: 3, documentsLoaded: 2, documentsKept: 2 });
      await expectSameRanking(await replica.search(search()), search()); // reads the version itself
      expect(loads).toHaveLength(2);
      const hits = await replica.search({ ...search(searchVersion), limit: 1000 });
      expect(hits.some((h) => h.id.startsWith(added))).toBe(true);
      expect(hits.some((h) => h.id.startsWith(documentIds[2]!))).toBe(false);
    }, 120_000);

    it('ranks in SQL while a course’s index loads, then in memory', async () => {
      const { courseId } = await syntheticCourse(6, 3, 40);
      let queries = 0;
      const count = () => queries++;
      const counting = createPrisma({ url: testDbUrls().pooled, logQueries: true, log: { debug: count, warn: count, error: count } });
      try {
        const store = createEmbeddedStore(counting, { indexWaitMs: 0 });
        const search = { courseId, sparse: query(rng(9)), limit: 20, searchVersion: 0 };
        await expectSameRanking(await store.search(search), search); // in SQL: the load had only begun
        for (let i = 0; i < 200 && store.indexStats().courses === 0; i++) await new Promise((r) => setTimeout(r, 25));
        expect(store.indexStats().courses).toBe(1);
        const before = queries;
        await expectSameRanking(await store.search(search), search);
        expect(queries).toBe(before);
      } finally {
        await counting.$disconnect();
      }
    }, 120_000);

    it('stays within its memory bound: the least recently searched course goes; a course too large is ranked in SQL', async () => {
      const a = await syntheticCourse(4, 2, 40);
      const b = await syntheticCourse(5, 2, 40);
      const probe = createEmbeddedStore(prisma, { indexWaitMs: Infinity });
      const sizeA = (await probe.warmIndex(a.courseId))!.bytes;
      const sizeB = (await probe.warmIndex(b.courseId))!.bytes;
      expect(probe.indexStats()).toEqual({ courses: 2, bytes: sizeA + sizeB });

      const bounded = createEmbeddedStore(prisma, { indexWaitMs: Infinity, indexMaxBytes: Math.max(sizeA, sizeB) + 1 });
      await bounded.warmIndex(a.courseId);
      await bounded.warmIndex(b.courseId);
      expect(bounded.indexStats()).toEqual({ courses: 1, bytes: sizeB });
      const search = { courseId: a.courseId, sparse: query(rng(5)), limit: 20 };
      await expectSameRanking(await bounded.search(search), search); // loads a again, drops b
      expect(bounded.indexStats()).toEqual({ courses: 1, bytes: sizeA });

      const tiny = createEmbeddedStore(prisma, { indexWaitMs: Infinity, indexMaxBytes: 1000 });
      expect(await tiny.warmIndex(a.courseId)).toBeNull();
      await expectSameRanking(await tiny.search(search), search);
      expect(tiny.indexStats()).toEqual({ courses: 0, bytes: 0 });
    }, 120_000);
  });
});
