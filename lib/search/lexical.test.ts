import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BM25_DEFAULTS, createLexicalEmbedder, murmurhash3, termId, tokenize, words } from './lexical.js';

const s32 = (u32: number) => u32 | 0;

describe('murmurhash3 (Python mmh3.hash)', () => {
  it('matches the test vectors of the mmh3 package (hajimes/mmh3 tests/test_mmh3.py)', () => {
    assert.equal(murmurhash3('foo'), -156908512);
    assert.equal(murmurhash3(''), 0);
    assert.equal(murmurhash3(new Uint8Array(0), 1), 0x514e28b7);
    assert.equal(murmurhash3(new Uint8Array(0), s32(0xffffffff)), s32(0x81f16f39));
    assert.equal(murmurhash3(Uint8Array.of(0x21, 0x43, 0x65, 0x87)), s32(0xf55b516b));
    assert.equal(murmurhash3(Uint8Array.of(0x21, 0x43, 0x65)), s32(0x7e4a8634));
    assert.equal(murmurhash3(Uint8Array.of(0x21, 0x43)), s32(0xa0f7b07a));
    assert.equal(murmurhash3(Uint8Array.of(0x21)), s32(0x72661cf4));
    assert.equal(murmurhash3(Uint8Array.of(0xff, 0xff, 0xff, 0xff)), s32(0x76293b50));
    assert.equal(murmurhash3(Uint8Array.of(0, 0, 0, 0)), s32(0x2362f9de));
    assert.equal(murmurhash3('abc'), s32(0xb3dd93fa));
    assert.equal(murmurhash3('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'), s32(0xee925b90));
    assert.equal(murmurhash3('Hello, world!', s32(0x9747b28c)), s32(0x24884cba));
    assert.equal(murmurhash3('a'.repeat(256), s32(0x9747b28c)), s32(0x37405bdc));
    assert.equal(murmurhash3('The quick brown fox jumps over the lazy dog', s32(0x9747b28c)), s32(0x2fa826cd));
  });

  it('hashes the UTF-8 bytes of non-ASCII text', () => {
    assert.equal(murmurhash3('ππππππππ', s32(0x9747b28c)), s32(0xd58063c1));
    assert.equal(murmurhash3('ππππππππ', s32(0x9747b28c)), murmurhash3(new TextEncoder().encode('ππππππππ'), s32(0x9747b28c)));
  });

  it('gives mmh3.hash("hello") == 613153351', () => {
    assert.equal(murmurhash3('hello'), 613153351);
  });
});

describe('termId (fastembed Bm25.compute_token_id = abs(mmh3.hash(token)))', () => {
  it('takes the absolute value of the signed hash, so opposite hashes collide (fastembed tests/test_bm25_hash_collisions.py)', () => {
    assert.equal(murmurhash3('kitchens'), 358434922);
    assert.equal(murmurhash3('prostaglandins'), -358434922);
    assert.equal(termId('kitchens'), 358434922);
    assert.equal(termId('prostaglandins'), 358434922);
  });

  it('maps the hash -2^31 to 2^31 (fastembed tests/test_bm25_query_index_overflow.py)', () => {
    assert.equal(murmurhash3('ad1u66pi'), -(2 ** 31));
    assert.equal(termId('ad1u66pi'), 2 ** 31);
  });

  it('gives the ids printed in the Qdrant/bm25 model card for its example documents', () => {
    // Model card: "You should stay, study and sprint." and "History can only prepare us to be surprised yet again."
    const embedder = createLexicalEmbedder();
    const [first, second] = embedder.embedDocuments([
      'You should stay, study and sprint.',
      'History can only prepare us to be surprised yet again.',
    ]);
    for (const id of [1881538586, 150760872, 1932363795]) assert.ok(first!.indices.includes(id), `${id}`);
    for (const id of [1849833631, 1008800696, 2090661150, 1117393019]) assert.ok(second!.indices.includes(id), `${id}`);
    // Five terms, each once: the card's 1.66973021.
    for (const value of second!.values) assert.ok(Math.abs(value - 1.66973021) < 1e-8);
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
    for (const [word, stem] of cases) assert.deepEqual(tokenize(word), [stem], word);
  });

  it('drops English stop words whatever their case, including the halves of contractions', () => {
    assert.deepEqual(tokenize('The quick brown fox IS a test sentence.'), ['quick', 'brown', 'fox', 'test', 'sentenc']);
    assert.deepEqual(tokenize("You don't, I'm sure, THEY've"), ['sure']);
    assert.deepEqual(tokenize('the and of to in'), []);
  });

  it('splits on punctuation and keeps "_" inside words, dropping a lone "_"', () => {
    assert.deepEqual(tokenize('B-cell anti-NMDA CD19-negative'), ['b', 'cell', 'anti', 'nmda', 'cd19', 'negat']);
    assert.deepEqual(tokenize('snake_case _ x'), ['snake_cas', 'x']);
    assert.deepEqual(tokenize('(Photosynthesis)!!! ...'), ['photosynthesi']);
  });

  it('drops words longer than 40 characters, counted in code points', () => {
    assert.deepEqual(tokenize('a'.repeat(40)), ['a'.repeat(40)]);
    assert.deepEqual(tokenize('a'.repeat(41)), []);
    assert.equal(tokenize('𝒜'.repeat(40)).length, 1);
    assert.equal(tokenize('𝒜'.repeat(41)).length, 0);
  });

  it('keeps non-ASCII letters, digits and combining marks inside words', () => {
    assert.deepEqual(words('Ελληνικά, café; Straße — naïve 日本語 Zürich 2nd'), [
      'ελληνικά',
      'café',
      'straße',
      'naïve',
      '日本語',
      'zürich',
      '2nd',
    ]);
    // fastembed tests/test_sparse_embeddings.py test_combining_marks_do_not_split_words
    assert.deepEqual(words('தமிழ் மொழி, हिन्दी भाषा! ذَهَبَ الطَّالِبُ'), ['தமிழ்', 'மொழி', 'हिन्दी', 'भाषा', 'ذَهَبَ', 'الطَّالِبُ']);
    assert.deepEqual(words('cafe\u0301s'), ['cafe\u0301s']);
    assert.deepEqual(tokenize('Naïve Zürich'), ['naïv', 'zürich']);
  });
});

describe('createLexicalEmbedder', () => {
  const embedder = createLexicalEmbedder();

  it('gives inflections and differently written forms of a word the same id', () => {
    const [id] = embedder.embedQuery('photosynthesis').indices;
    assert.deepEqual(embedder.embedQuery('Photosynthesis,').indices, [id]);
    assert.deepEqual(embedder.embedQuery('running').indices, embedder.embedQuery('runs').indices);
    assert.deepEqual(embedder.embedQuery('running').indices, [termId('run')]);
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
    assert.deepEqual(
      vector!.indices,
      [...expected.keys()].sort((x, y) => x - y),
    );
    vector!.indices.forEach((id, i) => assert.equal(vector!.values[i], expected.get(id)));
    // By hand: 4.4 / (2 + 1.2 * (0.25 + 0.75 * 5 / 256)) = 4.4 / 2.317578125, and 2.2 / 1.317578125.
    assert.ok(Math.abs(expected.get(termId('cat'))! - 1.898533) < 1e-6);
    assert.ok(Math.abs(expected.get(termId('dog'))! - 1.66973) < 1e-6);

    // When the document is exactly as long as the average, the length factor is 1: 2.2 / 2.2 and 4.4 / 3.2.
    const [atAverage] = createLexicalEmbedder({ avgLen: 5 }).embedDocuments([text]);
    const weights = new Map(atAverage!.indices.map((id, i) => [id, atAverage!.values[i]]));
    assert.equal(weights.get(termId('dog')), 1);
    assert.equal(weights.get(termId('cat')), 1.375);

    // k = 1.2, b = 0.75, avg_len = 256, one occurrence in six terms.
    const [six] = embedder.embedDocuments(['alpha beta gamma delta epsilon zeta']);
    for (const value of six!.values) assert.ok(Math.abs(value - 1.6652868) < 1e-6);
  });

  it('gives query terms weight 1, once per distinct term, indices sorted', () => {
    const query = embedder.embedQuery('Cats and more cats chasing the cat');
    assert.deepEqual(
      query.indices,
      [termId('cat'), termId('chase')].sort((x, y) => x - y),
    );
    assert.deepEqual(query.values, [1, 1]);
    assert.deepEqual(embedder.embedQuery('the of and'), { indices: [], values: [] });
  });

  it('is deterministic and does not depend on the order of colliding words', () => {
    const texts = ['Photosynthesis turns light into chemical energy.', 'Ελληνικά café'];
    assert.deepEqual(embedder.embedDocuments(texts), createLexicalEmbedder().embedDocuments(texts));
    // "qr6n" and "q11rm" are their own stems and share the id 2038369053.
    assert.equal(termId('qr6n'), termId('q11rm'));
    const [a, b] = embedder.embedDocuments(['qr6n qr6n q11rm', 'q11rm qr6n qr6n']);
    assert.deepEqual(a, b);
    assert.deepEqual(a!.indices, [2038369053]);
    assert.equal(a!.values[0], (2 * 2.2) / (2 + 1.2 * (0.25 + (0.75 * 3) / 256)));
  });

  it('embeds empty and stop-word-only documents as empty vectors', () => {
    assert.deepEqual(embedder.embedDocuments(['', '   ', 'the a an']), [
      { indices: [], values: [] },
      { indices: [], values: [] },
      { indices: [], values: [] },
    ]);
  });

  it('handles non-ASCII documents and queries alike', () => {
    const [doc] = embedder.embedDocuments(['Die Straße in Zürich, ελληνικά']);
    const query = embedder.embedQuery('STRASSE straße Zürich');
    assert.ok(query.indices.every((id) => id === termId('strass') || doc!.indices.includes(id)));
    assert.ok(doc!.indices.includes(termId('straße')) && doc!.indices.includes(termId('zürich')));
  });

  it('lists the distinct terms of a text for highlighting', () => {
    assert.deepEqual(embedder.terms('Running runs; the runner ran.'), ['run', 'runner', 'ran']);
  });

  it('refuses nonsensical parameters', () => {
    assert.throws(() => createLexicalEmbedder({ avgLen: 0 }), RangeError);
    assert.throws(() => createLexicalEmbedder({ b: 1.5 }), RangeError);
    assert.throws(() => createLexicalEmbedder({ k: Number.NaN }), RangeError);
  });
});
