import { describe, expect, it } from '@jest/globals';
import { BM25_DEFAULTS, createLexicalEmbedder, murmurhash3, termId, tokenize, words } from './lexical.js';

const s32 = (u32: number) => u32 | 0;

describe('murmurhash3 (Python mmh3.hash)', () => {
  it('matches the test vectors of the mmh3 package (hajimes/mmh3 tests/test_mmh3.py)', () => {
    expect(murmurhash3('foo')).toBe(-156908512);
    expect(murmurhash3('')).toBe(0);
    expect(murmurhash3(new Uint8Array(0), 1)).toBe(0x514e28b7);
    expect(murmurhash3(new Uint8Array(0), s32(0xffffffff))).toBe(s32(0x81f16f39));
    expect(murmurhash3(Uint8Array.of(0x21, 0x43, 0x65, 0x87))).toBe(s32(0xf55b516b));
    expect(murmurhash3(Uint8Array.of(0x21, 0x43, 0x65))).toBe(s32(0x7e4a8634));
    expect(murmurhash3(Uint8Array.of(0x21, 0x43))).toBe(s32(0xa0f7b07a));
    expect(murmurhash3(Uint8Array.of(0x21))).toBe(s32(0x72661cf4));
    expect(murmurhash3(Uint8Array.of(0xff, 0xff, 0xff, 0xff))).toBe(s32(0x76293b50));
    expect(murmurhash3(Uint8Array.of(0, 0, 0, 0))).toBe(s32(0x2362f9de));
    expect(murmurhash3('abc')).toBe(s32(0xb3dd93fa));
    expect(murmurhash3('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe(s32(0xee925b90));
    expect(murmurhash3('Hello, world!', s32(0x9747b28c))).toBe(s32(0x24884cba));
    expect(murmurhash3('a'.repeat(256), s32(0x9747b28c))).toBe(s32(0x37405bdc));
    expect(murmurhash3('The quick brown fox jumps over the lazy dog', s32(0x9747b28c))).toBe(s32(0x2fa826cd));
  });

  it('hashes the UTF-8 bytes of non-ASCII text', () => {
    expect(murmurhash3('ππππππππ', s32(0x9747b28c))).toBe(s32(0xd58063c1));
    expect(murmurhash3('ππππππππ', s32(0x9747b28c))).toBe(murmurhash3(new TextEncoder().encode('ππππππππ'), s32(0x9747b28c)));
  });

  it('gives mmh3.hash("hello") == 613153351', () => {
    expect(murmurhash3('hello')).toBe(613153351);
  });
});

describe('termId (fastembed Bm25.compute_token_id = abs(mmh3.hash(token)))', () => {
  it('takes the absolute value of the signed hash, so opposite hashes collide (fastembed tests/test_bm25_hash_collisions.py)', () => {
    expect(murmurhash3('kitchens')).toBe(358434922);
    expect(murmurhash3('prostaglandins')).toBe(-358434922);
    expect(termId('kitchens')).toBe(358434922);
    expect(termId('prostaglandins')).toBe(358434922);
  });

  it('maps the hash -2^31 to 2^31 (fastembed tests/test_bm25_query_index_overflow.py)', () => {
    expect(murmurhash3('ad1u66pi')).toBe(-(2 ** 31));
    expect(termId('ad1u66pi')).toBe(2 ** 31);
  });

  it('gives the ids printed in the Qdrant/bm25 model card for its example documents', () => {
    // Model card: "You should stay, study and sprint." and "History can only prepare us to be surprised yet again."
    const embedder = createLexicalEmbedder();
    const [first, second] = embedder.embedDocuments([
      'You should stay, study and sprint.',
      'History can only prepare us to be surprised yet again.',
    ]);
    for (const id of [1881538586, 150760872, 1932363795]) expect(first!.indices).toContain(id);
    for (const id of [1849833631, 1008800696, 2090661150, 1117393019]) expect(second!.indices).toContain(id);
    // Five terms, each once: the card's 1.66973021.
    expect(second!.values).toHaveLength(5);
    for (const value of second!.values) expect(Math.abs(value - 1.66973021)).toBeLessThan(1e-8);
  });
});

describe('tokenize', () => {
  it('stems with Snowball English (Porter2), as snowballstemmer and NLTK do', () => {
    const cases: Array<[string, string]> = [
      ['running', 'run'],
      ['runs', 'run'],
      ['generously', 'generous'],
      ['photosynthesis', 'photosynthesi'],
      ['studies', 'studi'],
      ['study', 'studi'],
      ['cats', 'cat'],
      ['fairly', 'fair'],
      ['dying', 'die'],
      ['skies', 'sky'],
      ['news', 'news'],
      ['sentence', 'sentenc'],
      ['history', 'histori'],
      ['surprised', 'surpris'],
      ['negative', 'negat'],
    ];
    // Word beside its tokens, so a failure names the word.
    expect(cases.map(([word]) => [word, tokenize(word)])).toStrictEqual(cases.map(([word, stem]) => [word, [stem]]));
  });

  it('drops English stop words whatever their case, including the halves of contractions', () => {
    expect(tokenize('The quick brown fox IS a test sentence.')).toStrictEqual(['quick', 'brown', 'fox', 'test', 'sentenc']);
    expect(tokenize("You don't, I'm sure, THEY've")).toStrictEqual(['sure']);
    expect(tokenize('the and of to in')).toStrictEqual([]);
  });

  it('splits on punctuation and keeps "_" inside words, dropping a lone "_"', () => {
    expect(tokenize('B-cell anti-NMDA CD19-negative')).toStrictEqual(['b', 'cell', 'anti', 'nmda', 'cd19', 'negat']);
    expect(tokenize('snake_case _ x')).toStrictEqual(['snake_cas', 'x']);
    expect(tokenize('(Photosynthesis)!!! ...')).toStrictEqual(['photosynthesi']);
  });

  it('drops words longer than 40 characters, counted in code points', () => {
    expect(tokenize('a'.repeat(40))).toStrictEqual(['a'.repeat(40)]);
    expect(tokenize('a'.repeat(41))).toStrictEqual([]);
    expect(tokenize('𝒜'.repeat(40)).length).toBe(1);
    expect(tokenize('𝒜'.repeat(41)).length).toBe(0);
  });

  it('keeps non-ASCII letters, digits and combining marks inside words', () => {
    expect(words('Ελληνικά, café; Straße — naïve 日本語 Zürich 2nd')).toStrictEqual([
      'ελληνικά',
      'café',
      'straße',
      'naïve',
      '日本語',
      'zürich',
      '2nd',
    ]);
    // fastembed tests/test_sparse_embeddings.py test_combining_marks_do_not_split_words
    expect(words('தமிழ் மொழி, हिन्दी भाषा! ذَهَبَ الطَّالِبُ')).toStrictEqual(['தமிழ்', 'மொழி', 'हिन्दी', 'भाषा', 'ذَهَبَ', 'الطَّالِبُ']);
    expect(words('cafe\u0301s')).toStrictEqual(['cafe\u0301s']);
    expect(tokenize('Naïve Zürich')).toStrictEqual(['naïv', 'zürich']);
  });
});

describe('createLexicalEmbedder', () => {
  const embedder = createLexicalEmbedder();

  it('gives inflections and differently written forms of a word the same id', () => {
    const [id] = embedder.embedQuery('photosynthesis').indices;
    expect(embedder.embedQuery('Photosynthesis,').indices).toStrictEqual([id]);
    expect(embedder.embedQuery('running').indices).toStrictEqual(embedder.embedQuery('runs').indices);
    expect(embedder.embedQuery('running').indices).toStrictEqual([termId('run')]);
  });

  it('weighs document terms with BM25 term-frequency saturation and length normalisation', () => {
    // "Cats chase cats; the dog sleeps." -> cat, chase, cat, dog, sleep: 5 terms, "cat" twice.
    const text = 'Cats chase cats; the dog sleeps.';
    const { k, b, avgLen } = BM25_DEFAULTS;
    const expected = new Map([
      [termId('cat'), (2 * (k + 1)) / (2 + k * (1 - b + (b * 5) / avgLen))],
      [termId('chase'), (1 * (k + 1)) / (1 + k * (1 - b + (b * 5) / avgLen))],
      [termId('dog'), (1 * (k + 1)) / (1 + k * (1 - b + (b * 5) / avgLen))],
      [termId('sleep'), (1 * (k + 1)) / (1 + k * (1 - b + (b * 5) / avgLen))],
    ]);
    const [vector] = embedder.embedDocuments([text]);
    expect(vector!.indices).toStrictEqual([...expected.keys()].sort((x, y) => x - y));
    vector!.indices.forEach((id, i) => expect(vector!.values[i]).toBe(expected.get(id)));
    // By hand: 4.4 / (2 + 1.2 * (0.25 + 0.75 * 5 / 256)) = 4.4 / 2.317578125, and 2.2 / 1.317578125.
    expect(Math.abs(expected.get(termId('cat'))! - 1.898533)).toBeLessThan(1e-6);
    expect(Math.abs(expected.get(termId('dog'))! - 1.66973)).toBeLessThan(1e-6);

    // When the document is exactly as long as the average, the length factor is 1: 2.2 / 2.2 and 4.4 / 3.2.
    const [atAverage] = createLexicalEmbedder({ avgLen: 5 }).embedDocuments([text]);
    const weights = new Map(atAverage!.indices.map((id, i) => [id, atAverage!.values[i]]));
    expect(weights.get(termId('dog'))).toBe(1);
    expect(weights.get(termId('cat'))).toBe(1.375);

    // k = 1.2, b = 0.75, avg_len = 256, one occurrence in six terms.
    const [six] = embedder.embedDocuments(['alpha beta gamma delta epsilon zeta']);
    expect(six!.values).toHaveLength(6);
    for (const value of six!.values) expect(Math.abs(value - 1.6652868)).toBeLessThan(1e-6);
  });

  it('gives query terms weight 1, once per distinct term, indices sorted', () => {
    const query = embedder.embedQuery('Cats and more cats chasing the cat');
    expect(query.indices).toStrictEqual([termId('cat'), termId('chase')].sort((x, y) => x - y));
    expect(query.values).toStrictEqual([1, 1]);
    expect(embedder.embedQuery('the of and')).toStrictEqual({ indices: [], values: [] });
  });

  it('is deterministic and does not depend on the order of colliding words', () => {
    const texts = ['Photosynthesis turns light into chemical energy.', 'Ελληνικά café'];
    expect(embedder.embedDocuments(texts)).toStrictEqual(createLexicalEmbedder().embedDocuments(texts));
    // "qr6n" and "q11rm" are their own stems and share the id 2038369053.
    expect(termId('qr6n')).toBe(termId('q11rm'));
    const [a, b] = embedder.embedDocuments(['qr6n qr6n q11rm', 'q11rm qr6n qr6n']);
    expect(a).toStrictEqual(b);
    expect(a!.indices).toStrictEqual([2038369053]);
    expect(a!.values[0]).toBe((2 * 2.2) / (2 + 1.2 * (0.25 + (0.75 * 3) / 256)));
  });

  it('embeds empty and stop-word-only documents as empty vectors', () => {
    expect(embedder.embedDocuments(['', '   ', 'the a an'])).toStrictEqual([
      { indices: [], values: [] },
      { indices: [], values: [] },
      { indices: [], values: [] },
    ]);
  });

  it('handles non-ASCII documents and queries alike', () => {
    const [doc] = embedder.embedDocuments(['Die Straße in Zürich, ελληνικά']);
    const query = embedder.embedQuery('STRASSE straße Zürich');
    // Every query term but "strass" (STRASSE is not stemmed to straße) is in the document.
    expect(doc!.indices).toStrictEqual(expect.arrayContaining(query.indices.filter((id) => id !== termId('strass'))));
    expect(doc!.indices).toContain(termId('straße'));
    expect(doc!.indices).toContain(termId('zürich'));
  });

  it('lists the distinct terms of a text for highlighting', () => {
    expect(embedder.terms('Running runs; the runner ran.')).toStrictEqual(['run', 'runner', 'ran']);
  });

  it('refuses nonsensical parameters', () => {
    expect(() => createLexicalEmbedder({ avgLen: 0 })).toThrow(RangeError);
    expect(() => createLexicalEmbedder({ b: 1.5 })).toThrow(RangeError);
    expect(() => createLexicalEmbedder({ k: Number.NaN })).toThrow(RangeError);
  });
});
