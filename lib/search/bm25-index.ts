import type { ScoredChunk } from './types.js';

/**
 * An in-memory inverted index of one course, for the embedded store's BM25 (lib/search/embedded.ts):
 * the same postings as `ChunkTerm`, held as one segment per document, scored as the store's SQL
 * scores them.
 *
 * A segment is immutable and holds its document's postings term by term (compressed sparse rows):
 * `terms` sorted ascending, `offsets[i]..offsets[i+1]` the postings of `terms[i]`, each a chunk
 * (local index into `ids`/`dl`) and its term frequency. A course's index is its segments plus
 * the course's statistics (chunks, tokens); a changed document is a new segment, the others are
 * shared with the previous version of the index.
 */
export interface Segment {
  documentId: string;
  /** What the document's rows looked like when loaded (see CourseIndexCache): unchanged, it is reused. */
  signature: string;
  /** Rows in `Chunk` (every chunk counts in N, with or without terms). */
  chunkCount: number;
  /** Σ `Chunk.tokenCount` (for the average chunk length). */
  tokenSum: number;
  /** Chunks with at least one posting: ids and lengths (`ChunkTerm.dl`). */
  ids: string[];
  dl: Int32Array;
  terms: Int32Array;
  offsets: Uint32Array;
  chunk: Uint16Array | Uint32Array;
  tf: Uint16Array;
  bytes: number;
}

/** One chunk's postings as loaded: its id, length and (term id, tf) pairs packed big-endian, 6 bytes a pair. */
export interface ChunkPostings {
  id: string;
  dl: number;
  pairs: Uint8Array;
}

/** A segment's objects besides its arrays (measured: about 1.5 KB). */
const SEGMENT_OVERHEAD_BYTES = 1600;
const PAIR_BYTES = 6;

/** Builds a document's segment from its chunks' postings (as `ChunkTerm` holds them) and its chunk statistics. */
export function buildSegment(
  documentId: string,
  signature: string,
  stats: { chunkCount: number; tokenSum: number },
  chunks: ChunkPostings[],
): Segment {
  let total = 0;
  for (const c of chunks) total += (c.pairs.length / PAIR_BYTES) | 0;
  const allTerms = new Int32Array(total);
  const allTf = new Uint16Array(total);
  const allChunk = new Uint32Array(total);
  const ids: string[] = [];
  const dl = new Int32Array(chunks.length);
  let p = 0;
  chunks.forEach((c, local) => {
    ids.push(c.id);
    dl[local] = c.dl;
    const view = new DataView(c.pairs.buffer, c.pairs.byteOffset, c.pairs.byteLength);
    for (let o = 0; o + PAIR_BYTES <= c.pairs.byteLength; o += PAIR_BYTES, p++) {
      allTerms[p] = view.getInt32(o);
      allTf[p] = view.getInt16(o + 4);
      allChunk[p] = local;
    }
  });
  // Postings by term (stable: within a term, in chunk order), then the distinct terms and their offsets.
  const order = orderByTerm(allTerms);
  let distinct = 0;
  for (let i = 0; i < total; i++) if (i === 0 || allTerms[order[i]!] !== allTerms[order[i - 1]!]) distinct++;
  const terms = new Int32Array(distinct);
  const offsets = new Uint32Array(distinct + 1);
  const chunk = chunks.length <= 0x10000 ? new Uint16Array(total) : new Uint32Array(total);
  const tf = new Uint16Array(total);
  let t = -1;
  for (let i = 0; i < total; i++) {
    const o = order[i]!;
    if (t < 0 || allTerms[o] !== terms[t]) {
      terms[++t] = allTerms[o]!;
      offsets[t] = i;
    }
    chunk[i] = allChunk[o]!;
    tf[i] = allTf[o]!;
  }
  offsets[distinct] = total;
  let idBytes = 0;
  for (const id of ids) idBytes += 2 * id.length + 32;
  const bytes =
    SEGMENT_OVERHEAD_BYTES +
    2 * documentId.length +
    2 * signature.length +
    idBytes +
    dl.byteLength +
    terms.byteLength +
    offsets.byteLength +
    chunk.byteLength +
    tf.byteLength;
  return { documentId, signature, chunkCount: stats.chunkCount, tokenSum: stats.tokenSum, ids, dl, terms, offsets, chunk, tf, bytes };
}

/** Index of `term` in the ascending `terms`, or -1. */
function find(terms: Int32Array, term: number): number {
  let lo = 0;
  let hi = terms.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = terms[mid]!;
    if (v < term) lo = mid + 1;
    else if (v > term) hi = mid - 1;
    else return mid;
  }
  return -1;
}

/**
 * The permutation that sorts `keys` (non-negative) ascending, stable: an insertion sort when short,
 * else a least-significant-digit radix sort, a byte per pass (no comparisons, no allocation per key).
 */
function orderByTerm(keys: Int32Array): Uint32Array {
  const n = keys.length;
  let order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (n <= 64) {
    for (let i = 1; i < n; i++) {
      const o = order[i]!;
      const k = keys[o]!;
      let j = i - 1;
      for (; j >= 0 && keys[order[j]!]! > k; j--) order[j + 1] = order[j]!;
      order[j + 1] = o;
    }
    return order;
  }
  let spare = new Uint32Array(n);
  const counts = new Uint32Array(256);
  for (let shift = 0; shift < 32; shift += 8) {
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[(keys[i]! >>> shift) & 255]!++;
    if (counts[0] === n) continue; // every key has this byte 0: nothing moves
    let sum = 0;
    for (let d = 0; d < 256; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const o = order[i]!;
      spare[counts[(keys[o]! >>> shift) & 255]!++] = o;
    }
    [order, spare] = [spare, order];
  }
  return order;
}

export interface Bm25Params {
  k1: number;
  b: number;
}

/** One course's index at one `Course.searchVersion`. */
export class CourseIndex {
  readonly chunkCount: number;
  readonly tokenSum: number;
  readonly postings: number;
  readonly bytes: number;
  private readonly list: Segment[];

  constructor(
    readonly courseId: string,
    readonly version: number,
    readonly segments: ReadonlyMap<string, Segment>,
  ) {
    this.list = [...segments.values()];
    let chunks = 0;
    let tokens = 0;
    let postings = 0;
    let bytes = 0;
    for (const s of this.list) {
      chunks += s.chunkCount;
      tokens += s.tokenSum;
      postings += s.tf.length;
      bytes += s.bytes;
    }
    this.chunkCount = chunks;
    this.tokenSum = tokens;
    this.postings = postings;
    this.bytes = bytes;
  }

  /**
   * The best `limit` chunks for these query terms (each counted once), as the store's SQL ranks
   * them: BM25 with the course's own N, document frequencies (over the whole course, whatever the
   * document filter) and average chunk length, Qdrant's IDF ln(1 + (N − n + 0.5) / (n + 0.5)),
   * then score descending and chunk id ascending. Each term's weight is computed with the SQL's
   * operations in the SQL's order, so the scores are the same up to the last bit: V8's Math.log is
   * not always PostgreSQL's ln to the bit, and PostgreSQL adds a chunk's terms in whatever order its
   * plan delivers them. Here they are added in ascending term id, so chunks with the same terms tie
   * exactly and go by id, as `ORDER BY score DESC, "chunkId"` means them to.
   */
  search(queryTerms: readonly number[], limit: number, params: Bm25Params, documentIds?: readonly string[]): ScoredChunk[] {
    const terms = Int32Array.from(new Set(queryTerms)).sort();
    if (terms.length === 0 || limit <= 0 || this.chunkCount === 0) return [];
    const n = this.chunkCount;
    // greatest(coalesce(avg("tokenCount"), 1), 1)
    const avgdl = Math.max(this.tokenSum / n, 1);
    const { k1, b } = params;
    const k1plus1 = k1 + 1;
    const oneMinusB = 1 - b;

    // Document frequencies over the whole course; where each term's postings are in each segment.
    const segs = this.list;
    const ranges = new Int32Array(segs.length * terms.length * 2);
    const df = new Float64Array(terms.length);
    for (let s = 0; s < segs.length; s++) {
      const seg = segs[s]!;
      for (let j = 0; j < terms.length; j++) {
        const t = find(seg.terms, terms[j]!);
        const at = (s * terms.length + j) * 2;
        if (t < 0) {
          ranges[at] = ranges[at + 1] = 0;
          continue;
        }
        ranges[at] = seg.offsets[t]!;
        ranges[at + 1] = seg.offsets[t + 1]!;
        df[j]! += seg.offsets[t + 1]! - seg.offsets[t]!;
      }
    }
    const idf = new Float64Array(terms.length);
    for (let j = 0; j < terms.length; j++) {
      const dfj = df[j]!;
      idf[j] = dfj > 0 ? Math.log(1 + (n - dfj + 0.5) / (dfj + 0.5)) : 0;
    }

    const filter = documentIds?.length ? new Set(documentIds) : null;
    const top = new TopK(limit);
    for (let s = 0; s < segs.length; s++) {
      const seg = segs[s]!;
      if (filter && !filter.has(seg.documentId)) continue;
      const { acc, seen, touched } = scratch(seg.ids.length);
      let touchedCount = 0;
      const { chunk, tf, dl } = seg;
      // Term at a time, in ascending id order: every chunk adds its terms in the same order.
      for (let j = 0; j < terms.length; j++) {
        const at = (s * terms.length + j) * 2;
        const from = ranges[at]!;
        const to = ranges[at + 1]!;
        if (from === to) continue;
        const w = idf[j]!;
        for (let p = from; p < to; p++) {
          const c = chunk[p]!;
          const f = tf[p]!;
          // ln(…) * t.tf * (k1 + 1) / (t.tf + k1 * (1 - b + b * t.dl / avgdl))
          const score = (w * f * k1plus1) / (f + k1 * (oneMinusB + (b * dl[c]!) / avgdl));
          if (seen[c] === 0) {
            seen[c] = 1;
            acc[c] = score;
            touched[touchedCount++] = c;
          } else acc[c]! += score;
        }
      }
      for (let i = 0; i < touchedCount; i++) {
        const c = touched[i]!;
        seen[c] = 0;
        // Below the worst kept score it cannot enter (equal may, by id).
        if (acc[c]! >= top.floor) top.offer(acc[c]!, seg.ids[c]!);
      }
    }
    return top.sorted();
  }
}

// Per-chunk accumulators, reused by every search (scoring is synchronous); `seen` is left all zero.
let work = { acc: new Float64Array(1024), seen: new Uint8Array(1024), touched: new Uint32Array(1024) };
function scratch(size: number) {
  if (work.acc.length < size) {
    const n = Math.max(size, work.acc.length * 2);
    work = { acc: new Float64Array(n), seen: new Uint8Array(n), touched: new Uint32Array(n) };
  }
  return work;
}

/** `a` ranks before `b`: higher score, then smaller id (the SQL's ORDER BY score DESC, "chunkId"). */
const before = (as: number, aid: string, bs: number, bid: string) => as > bs || (as === bs && aid < bid);

/** The best k of a stream of scored ids: a heap whose root is the worst kept. */
export class TopK {
  private readonly scores: number[] = [];
  private readonly ids: string[] = [];
  /** The worst kept score once k are kept (-Infinity before): anything lower cannot enter. */
  floor = -Infinity;
  constructor(private readonly k: number) {}

  offer(score: number, id: string): void {
    const { scores, ids } = this;
    if (scores.length < this.k) {
      scores.push(score);
      ids.push(id);
      // Sift up: a parent must rank after (be worse than) its children.
      let i = scores.length - 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!before(scores[parent]!, ids[parent]!, scores[i]!, ids[i]!)) break;
        this.swap(i, parent);
        i = parent;
      }
      if (scores.length === this.k) this.floor = scores[0]!;
      return;
    }
    if (!before(score, id, scores[0]!, ids[0]!)) return;
    scores[0] = score;
    ids[0] = id;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let worst = i;
      if (l < scores.length && before(scores[worst]!, ids[worst]!, scores[l]!, ids[l]!)) worst = l;
      if (r < scores.length && before(scores[worst]!, ids[worst]!, scores[r]!, ids[r]!)) worst = r;
      if (worst === i) break;
      this.swap(i, worst);
      i = worst;
    }
    this.floor = scores[0]!;
  }

  sorted(): ScoredChunk[] {
    return this.ids
      .map((id, i) => ({ id, score: this.scores[i]! }))
      .sort((x, y) => (before(x.score, x.id, y.score, y.id) ? -1 : before(y.score, y.id, x.score, x.id) ? 1 : 0));
  }

  private swap(i: number, j: number) {
    const s = this.scores[i]!;
    this.scores[i] = this.scores[j]!;
    this.scores[j] = s;
    const id = this.ids[i]!;
    this.ids[i] = this.ids[j]!;
    this.ids[j] = id;
  }
}
