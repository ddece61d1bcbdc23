/**
 * BM25 sparse vectors, the offline default, computed exactly as Qdrant's
 * `Qdrant/bm25` model (fastembed's `Bm25` class) computes them, so that our
 * term ids and weights are the ones a Qdrant user gets from fastembed and the
 * IDF half of BM25 can be left to the store (`modifier: idf`).
 *
 * Reproduced from qdrant/fastembed (read in the stored copy of the repository):
 *
 * `fastembed/sparse/bm25.py`
 *   - defaults: `k: float = 1.2`, `b: float = 0.75`, `avg_len: float = 256.0`,
 *     `language: str = "english"`, `token_max_length: int = 40`.
 *   - `raw_embed` and `query_embed`: `remove_non_alphanumeric(document)`, then
 *     `self.tokenizer.tokenize(document)` (SimpleTokenizer), then `self._stem(tokens)`.
 *   - `_stem`: for each token, `lower_token = token.lower()`; skip it
 *     `if token in self.punctuation`, `if lower_token in self.stopwords`,
 *     `if len(token) > self.token_max_length`; then
 *     `self.stemmer.stem_word(lower_token)` (`SnowballStemmer(language)` from
 *     py_rust_stemmers) and keep the stem `if stemmed_token`.
 *   - `_term_frequency`: counts per stem, `doc_len = len(tokens)` (the stems that
 *     survived `_stem`), then per stem
 *     `tf_map[token_id] = num_occurrences * (self.k + 1)` and
 *     `tf_map[token_id] /= num_occurrences + self.k * (1 - self.b + self.b * doc_len / self.avg_len)`.
 *   - `compute_token_id`: `return abs(mmh3.hash(token))` (MurmurHash3 x86 32-bit,
 *     seed 0, over the UTF-8 bytes, signed, then absolute value: ids 0..2^31).
 *   - `query_embed`: `set(self.compute_token_id(token) for token in stemmed_tokens)`
 *     and `values = np.ones_like(token_ids)`: weight 1 per distinct id.
 *   - stop words: `_load_stopwords` reads `english.txt` shipped with the
 *     `Qdrant/bm25` model, one word a line (NLTK's English list, 179 words).
 *
 * `fastembed/common/utils.py`
 *   - `remove_non_alphanumeric`: `re.sub(r"[^\w\s]", " ", text)` for ASCII text,
 *     `[^\w\s{get_all_marks()}]` otherwise (combining marks, category M, kept).
 *   - `get_all_punctuation`: every character whose category starts with "P".
 *
 * `fastembed/sparse/utils/tokenizer.py` (`SimpleTokenizer.tokenize`)
 *   - `re.sub(r"[^\w]", " ", text.lower())`, collapse whitespace, `split()`;
 *     its test `test_combining_marks_do_not_split_words` (tests/test_sparse_embeddings.py)
 *     shows that the current version also keeps combining marks inside words.
 *
 * Python's `\w` on str is Unicode-aware: `str.isalnum()` characters plus "_".
 * Over all code points that is exactly `[\p{L}\p{N}_]` (checked against
 * CPython 3.11's `re`, differences only for characters newer than its Unicode
 * 14 tables). A word is therefore a run of `[\p{L}\p{N}\p{M}_]`.
 *
 * The only word that `token in self.punctuation` can drop is "_" alone (the
 * sole \w character in a "P" category, Pc).
 *
 * Where we differ, deliberately:
 *   - Two different stems whose ids collide (e.g. "kitchens" and
 *     "prostaglandins", fastembed's tests/test_bm25_hash_collisions.py) keep the
 *     larger weight, so the vector does not depend on word order (older
 *     fastembed releases kept whichever stem came last).
 *   - Indices are sorted ascending.
 *
 * The stemmer is `porter2` (Snowball English, "Porter2"); it gives the same
 * stems as Python's snowballstemmer 2.2 (checked on 73k English words).
 */
import { stem } from 'porter2';
import type { SparseEmbedder, SparseVector } from './types.js';

export const BM25_DEFAULTS = { k: 1.2, b: 0.75, avgLen: 256, tokenMaxLength: 40 } as const;

export interface LexicalEmbedderOptions {
  /** Average document length in stems (`tokenize(text).length`), measured on the course's chunks. Default 256. */
  avgLen?: number;
  /** Term-frequency saturation. Default 1.2. */
  k?: number;
  /** Length normalisation, 0..1. Default 0.75. */
  b?: number;
  language?: 'english';
}

/**
 * NLTK's English stop words, as shipped in `Qdrant/bm25`'s `english.txt`. The
 * entries with an apostrophe can never match (the tokenizer splits on it) and
 * are kept only so the list reads like the original.
 */
export const ENGLISH_STOP_WORDS: ReadonlySet<string> = new Set(
  [
    "i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves",
    "he him his himself she she's her hers herself it it's its itself they them their theirs themselves",
    "what which who whom this that that'll these those am is are was were be been being have has had having",
    'do does did doing a an the and but if or because as until while of at by for with about against between',
    'into through during before after above below to from up down in out on off over under again further then',
    'once here there when where why how all any both each few more most other some such no nor not only own',
    "same so than too very s t can will just don don't should should've now d ll m o re ve y ain aren aren't",
    "couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn",
    "mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't",
    "wouldn wouldn't",
  ]
    .join(' ')
    .split(' '),
);

/** Characters that are not part of a word: anything but letters, digits, combining marks and "_". */
const NON_WORD = /[^\p{L}\p{N}\p{M}_]+/gu;
const WORD = /[\p{L}\p{N}\p{M}_]+/gu;

/** The lower-cased words of a text, before stop words and stemming (fastembed's `SimpleTokenizer`). */
export function words(text: string): string[] {
  return text.replace(NON_WORD, ' ').toLowerCase().match(WORD) ?? [];
}

function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/**
 * The normalised terms of a text, in order and with repeats: lower-cased words,
 * stop words and words over 40 characters dropped, Snowball English stems.
 * Its length is the document length BM25 uses (and the unit of `avgLen`).
 */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const word of words(text)) {
    if (word === '_' || ENGLISH_STOP_WORDS.has(word) || codePointLength(word) > BM25_DEFAULTS.tokenMaxLength) continue;
    const stemmed = stem(word);
    if (stemmed) out.push(stemmed);
  }
  return out;
}

const utf8 = new TextEncoder();

/**
 * MurmurHash3 x86 32-bit over the UTF-8 bytes of a string (or over bytes),
 * as a signed 32-bit integer: Python's `mmh3.hash(data, seed)`.
 */
export function murmurhash3(data: string | Uint8Array, seed = 0): number {
  const bytes = typeof data === 'string' ? utf8.encode(data) : data;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const len = bytes.length;
  const blocks = len & ~3;
  let h = seed | 0;
  let k: number;
  for (let i = 0; i < blocks; i += 4) {
    k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = len & 3;
  if (rest > 0) {
    k = 0;
    if (rest === 3) k ^= bytes[blocks + 2]! << 16;
    if (rest >= 2) k ^= bytes[blocks + 1]! << 8;
    k ^= bytes[blocks]!;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** The sparse id of a normalised term: `abs(mmh3.hash(term))`, 0..2^31. */
export function termId(term: string): number {
  return Math.abs(murmurhash3(term));
}

function sortedVector(weights: Map<number, number>): SparseVector {
  const indices = [...weights.keys()].sort((x, y) => x - y);
  return { indices, values: indices.map((i) => weights.get(i)!) };
}

function checkOptions(avgLen: number, k: number, b: number): void {
  if (!(Number.isFinite(avgLen) && avgLen > 0)) throw new RangeError(`BM25 avgLen must be a positive number, got ${avgLen}`);
  if (!(Number.isFinite(k) && k >= 0)) throw new RangeError(`BM25 k must be a non-negative number, got ${k}`);
  if (!(Number.isFinite(b) && b >= 0 && b <= 1)) throw new RangeError(`BM25 b must be between 0 and 1, got ${b}`);
}

export function createLexicalEmbedder(opts: LexicalEmbedderOptions = {}): SparseEmbedder {
  const { avgLen = BM25_DEFAULTS.avgLen, k = BM25_DEFAULTS.k, b = BM25_DEFAULTS.b, language = 'english' } = opts;
  if (language !== 'english') throw new RangeError(`BM25 language ${String(language)} is not supported`);
  checkOptions(avgLen, k, b);

  const documentVector = (terms: string[]): SparseVector => {
    const counts = new Map<string, number>();
    for (const term of terms) counts.set(term, (counts.get(term) ?? 0) + 1);
    const docLen = terms.length;
    const weights = new Map<number, number>();
    for (const [term, n] of counts) {
      // Same operations in the same order as fastembed's `_term_frequency`, so the float64 results are identical.
      const weight = (n * (k + 1)) / (n + k * (1 - b + (b * docLen) / avgLen));
      const id = termId(term);
      weights.set(id, Math.max(weights.get(id) ?? 0, weight));
    }
    return sortedVector(weights);
  };

  return {
    embedDocuments: (texts) => texts.map((text) => documentVector(tokenize(text))),
    embedQuery: (text) => sortedVector(new Map(tokenize(text).map((term) => [termId(term), 1]))),
    terms: (text) => [...new Set(tokenize(text))],
  };
}
