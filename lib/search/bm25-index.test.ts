import { describe, expect, it } from '@jest/globals';
import { buildSegment, CourseIndex, TopK, type ChunkPostings, type Segment } from './bm25-index.js';

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pack = (pairs: [term: number, tf: number][]) => {
  const bytes = new Uint8Array(pairs.length * 6);
  const view = new DataView(bytes.buffer);
  pairs.forEach(([term, tf], i) => {
    view.setInt32(i * 6, term);
    view.setInt16(i * 6 + 4, tf);
  });
  return bytes;
};

interface Chunk {
  id: string;
  documentId: string;
  tokenCount: number;
  terms: Map<number, number>;
}

/** BM25 the way the store's SQL writes it, chunk by chunk: the reference for the index. */
function reference(chunks: Chunk[], query: number[], limit: number, documentIds?: string[]) {
  const k1 = 1.2;
  const b = 0.75;
  const terms = [...new Set(query)].sort((x, y) => x - y);
  const n = chunks.length;
  const avgdl = Math.max(chunks.reduce((s, c) => s + c.tokenCount, 0) / n, 1);
  const df = new Map(terms.map((t) => [t, chunks.filter((c) => c.terms.has(t)).length]));
  const scored: { id: string; score: number }[] = [];
  for (const c of chunks) {
    if (documentIds && !documentIds.includes(c.documentId)) continue;
    let score: number | null = null;
    for (const t of terms) {
      const tf = c.terms.get(t);
      if (tf === undefined) continue;
      const d = df.get(t)!;
      const s = (Math.log(1 + (n - d + 0.5) / (d + 0.5)) * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * c.tokenCount) / avgdl));
      score = score === null ? s : score + s;
    }
    if (score !== null) scored.push({ id: c.id, score });
  }
  return scored.sort((x, y) => y.score - x.score || (x.id < y.id ? -1 : 1)).slice(0, limit);
}

function course(seed: number, documents: number, chunksPerDocument: number, vocabulary: number) {
  const rand = rng(seed);
  const chunks: Chunk[] = [];
  const segments = new Map<string, Segment>();
  for (let d = 0; d < documents; d++) {
    const documentId = `doc-${String(d).padStart(3, '0')}`;
    const mine: Chunk[] = [];
    for (let i = 0; i < chunksPerDocument; i++) {
      const terms = new Map<number, number>();
      // Some chunks repeat the previous one exactly (ties); a few have no terms at all.
      const copy = mine.length && rand() < 0.15 ? mine[mine.length - 1]! : null;
      if (copy) for (const [t, f] of copy.terms) terms.set(t, f);
      else if (rand() > 0.05) {
        const length = 1 + Math.floor(rand() * 30);
        for (let w = 0; w < length; w++) {
          // Skewed: small ids are common. Large ids too (beyond 2^30), like real term hashes.
          const rank = Math.floor(vocabulary * rand() ** 3);
          const term = rank % 2 ? 0x7fff0000 - rank * 7919 : rank * 104729;
          terms.set(term, (terms.get(term) ?? 0) + 1);
        }
      }
      const tokenCount = [...terms.values()].reduce((s, f) => s + f, 0);
      mine.push({ id: `${documentId}:${i}`, documentId, tokenCount, terms });
    }
    chunks.push(...mine);
    const withTerms = mine.filter((c) => c.terms.size > 0);
    segments.set(
      documentId,
      buildSegment(
        documentId,
        'sig',
        { chunkCount: mine.length, tokenSum: mine.reduce((s, c) => s + c.tokenCount, 0) },
        withTerms.map((c): ChunkPostings => ({ id: c.id, dl: c.tokenCount, pairs: pack([...c.terms]) })),
      ),
    );
  }
  return { chunks, index: new CourseIndex('course', 1, segments) };
}

describe('in-memory BM25 index', () => {
  it('holds each document’s postings term by term, term ids ascending, whatever their order and size', () => {
    const rand = rng(7);
    for (const size of [0, 1, 5, 64, 65, 3000]) {
      const pairs: [number, number][] = Array.from({ length: size }, () => [Math.floor(rand() * 2 ** 31), 1 + Math.floor(rand() * 100)]);
      const chunks: ChunkPostings[] = [];
      for (let i = 0; i < pairs.length; i += 10) chunks.push({ id: `c${i / 10}`, dl: 10, pairs: pack(pairs.slice(i, i + 10)) });
      const s = buildSegment('d', 'sig', { chunkCount: chunks.length, tokenSum: 0 }, chunks);
      expect([...s.terms]).toEqual([...new Set(pairs.map(([t]) => t))].sort((x, y) => x - y));
      const seen: string[] = [];
      s.terms.forEach((term, t) => {
        for (let p = s.offsets[t]!; p < s.offsets[t + 1]!; p++) seen.push(`${term}:${s.tf[p]}:${s.chunk[p]}`);
      });
      const expected = pairs.map(([term, tf], i) => `${term}:${tf}:${Math.floor(i / 10)}`);
      expect(seen.sort()).toEqual(expected.sort());
    }
  });

  it('ranks as the SQL does: same scores, score then chunk id, N, df and average length of the whole course', () => {
    const { chunks, index } = course(42, 12, 40, 400);
    const rand = rng(3);
    const termsOf = [...new Set(chunks.flatMap((c) => [...c.terms.keys()]))];
    for (let q = 0; q < 200; q++) {
      const query = Array.from({ length: 1 + Math.floor(rand() * 5) }, () => termsOf[Math.floor(rand() * termsOf.length)]!);
      if (q % 10 === 0) query.push(123_456_789); // a term the course does not have
      const limit = [1, 5, 10, 100, 1000][q % 5]!;
      const filter = q % 3 === 0 ? ['doc-001', 'doc-007', 'doc-404'] : undefined;
      const got = index.search(query, limit, { k1: 1.2, b: 0.75 }, filter);
      expect(got).toEqual(reference(chunks, query, limit, filter));
    }
  });

  it('breaks ties by chunk id, as ORDER BY score DESC, "chunkId" does', () => {
    const top = new TopK(3);
    for (const [score, id] of [
      [1, 'b'],
      [2, 'z'],
      [1, 'a'],
      [1, 'c'],
      [0.5, 'x'],
      [2, 'y'],
    ] as const)
      top.offer(score, id);
    expect(top.sorted()).toEqual([
      { id: 'y', score: 2 },
      { id: 'z', score: 2 },
      { id: 'a', score: 1 },
    ]);
  });

  it('finds nothing for no terms, no limit or an empty course', () => {
    const { index } = course(1, 2, 5, 50);
    expect(index.search([], 10, { k1: 1.2, b: 0.75 })).toEqual([]);
    expect(index.search([0], 0, { k1: 1.2, b: 0.75 })).toEqual([]);
    expect(new CourseIndex('c', 0, new Map()).search([0], 10, { k1: 1.2, b: 0.75 })).toEqual([]);
  });
});
