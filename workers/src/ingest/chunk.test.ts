import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chunkDocument, fullText } from './chunk.js';
import type { Chunk, DocumentFormat, ParsedDocument } from './types.js';

const doc = (format: DocumentFormat, ...pages: string[]): ParsedDocument => ({
  format,
  pages: pages.map((text, i) => ({ page: i + 1, text })),
});

/** Deterministic filler: numbered sentences of varied length, so that every sentence is unique. */
function sentences(from: number, count: number): string {
  const words = ['cells', 'divide', 'by', 'mitosis', 'which', 'copies', 'the', 'genome', 'into', 'two', 'daughter', 'nuclei'];
  return Array.from({ length: count }, (_, i) => {
    const n = from + i;
    const body = Array.from({ length: 6 + (n % 9) }, (_, k) => words[(n + k) % words.length]).join(' ');
    return `Sentence ${n} says ${body}.`;
  }).join(' ');
}

function assertExactSlices(d: ParsedDocument, chunks: Chunk[]): void {
  const text = fullText(d);
  for (const c of chunks) assert.equal(text.slice(c.charStart, c.charEnd), c.text, `chunk ${c.position} is not its slice`);
}

const isSpaceOrEdge = (ch: string | undefined) => ch === undefined || /\s/.test(ch);

describe('chunkDocument', () => {
  const book = doc(
    'PDF',
    `# Cells\n\n${sentences(0, 12)}\n\n${sentences(100, 10)}`,
    '',
    `${sentences(200, 14)}\n\n# Energy\n\n${sentences(300, 20)}`,
    '   \n ',
    `${sentences(400, 6)}`,
  );

  it('gives chunks whose text is exactly fullText.slice(charStart, charEnd), numbered in order', () => {
    const chunks = chunkDocument(book, { targetChars: 500, overlapChars: 120 });
    assert.ok(chunks.length > 8, `expected many chunks, got ${chunks.length}`);
    assertExactSlices(book, chunks);
    assert.deepEqual(
      chunks.map((c) => c.position),
      chunks.map((_, i) => i),
    );
    assert.ok(fullText(book).startsWith('# Cells\n\nSentence 0'));
  });

  it('maps chunks to the pages holding their first and last characters, skipping empty pages', () => {
    const chunks = chunkDocument(book, { targetChars: 500, overlapChars: 120 });
    for (const c of chunks) {
      assert.ok(c.text.trim(), 'no empty chunk');
      assert.ok(c.pageStart <= c.pageEnd);
      assert.ok(![2, 4].includes(c.pageStart) && ![2, 4].includes(c.pageEnd), `chunk ${c.position} on an empty page`);
      if (c.pageStart === c.pageEnd)
        assert.ok(book.pages[c.pageStart - 1]!.text.includes(c.text), `chunk ${c.position} not on page ${c.pageStart}`);
    }
    const onPage = (n: number, s: number) => chunks.some((c) => c.pageStart <= n && c.pageEnd >= n && c.text.includes(`Sentence ${s} `));
    assert.ok(onPage(1, 105) && onPage(3, 210) && onPage(3, 310) && onPage(5, 402));
  });

  it('never lets a PDF chunk span two pages, so every passage cites one page', () => {
    const d = doc(
      'PDF',
      `# Cells\n\n${sentences(0, 2)}\n\n${sentences(10, 12)}\n\nShort end of page one.`,
      'Short start of page two.\n\n' + sentences(20, 12),
    );
    const chunks = chunkDocument(d, { targetChars: 400, overlapChars: 100 });
    assert.ok(chunks.every((c) => c.pageStart === c.pageEnd));
    const end = chunks.find((c) => c.text.includes('Short end of page one.'));
    const start = chunks.find((c) => c.text.includes('Short start of page two.'));
    assert.equal(end?.pageStart, 1);
    assert.equal(start?.pageStart, 2);
    assert.equal(start?.heading, 'Cells', 'page two continues the section of page one');
    assert.deepEqual(
      chunks.map((c) => c.position),
      chunks.map((_, i) => i),
    );
    assertExactSlices(d, chunks);
  });

  it('carries the nearest heading, starts a new chunk at each heading and ignores # lines in code fences', () => {
    const md = doc(
      'MARKDOWN',
      [
        'Intro before any heading.',
        '# Chapter 1',
        '## Photosynthesis',
        sentences(0, 8),
        '```python\n# not a heading\nprint(1)\n```',
        '## Respiration ##',
        sentences(50, 8),
        'Setext title\n============',
        'Under the setext heading.',
      ].join('\n\n'),
    );
    const chunks = chunkDocument(md, { targetChars: 600, overlapChars: 150 });
    assertExactSlices(md, chunks);
    assert.equal(chunks[0]!.heading, null);
    assert.equal(chunks[0]!.text, 'Intro before any heading.');
    // "# Chapter 1" has no text of its own: it opens the first chunk of the next section.
    assert.ok(chunks[1]!.text.startsWith('# Chapter 1\n\n## Photosynthesis\n\nSentence 0 '));
    assert.equal(chunks[1]!.heading, 'Photosynthesis');
    const fenced = chunks.find((c) => c.text.includes('# not a heading'));
    assert.equal(fenced?.heading, 'Photosynthesis');
    const resp = chunks.filter((c) => /Sentence 5\d /.test(c.text));
    assert.ok(resp.length && resp.every((c) => c.heading === 'Respiration'));
    assert.ok(chunks.some((c) => c.text.startsWith('## Respiration ##')));
    assert.equal(chunks[chunks.length - 1]!.heading, 'Setext title');
    // No chunk holds text from two sections.
    for (const c of chunks) assert.ok(!(c.text.includes('Sentence 7 ') && c.text.includes('Sentence 50 ')));
  });

  it('repeats whole tail sentences of the previous chunk, within overlapChars, and never across a heading', () => {
    const d = doc('MARKDOWN', `# A\n\n${sentences(0, 40)}\n\n# B\n\n${sentences(100, 40)}`);
    const overlapChars = 150;
    const chunks = chunkDocument(d, { targetChars: 500, overlapChars });
    const text = fullText(d);
    let overlaps = 0;
    for (let i = 1; i < chunks.length; i++) {
      const [prev, next] = [chunks[i - 1]!, chunks[i]!];
      if (next.heading !== prev.heading) {
        assert.ok(next.charStart >= prev.charEnd, 'no overlap across a heading');
        assert.ok(next.text.startsWith('# B'));
        continue;
      }
      const shared = prev.charEnd - next.charStart;
      assert.ok(shared <= overlapChars, `overlap of ${shared} chars exceeds ${overlapChars}`);
      if (shared > 0) {
        overlaps++;
        assert.ok(prev.text.endsWith(text.slice(next.charStart, prev.charEnd)));
        // The repeated part starts at a sentence start.
        assert.match(next.text, /^Sentence \d+ /);
        assert.match(text.slice(0, next.charStart), /[.]\s+$/);
      }
    }
    assert.ok(overlaps >= chunks.length - 3, `overlap in ${overlaps} of ${chunks.length - 1} transitions`);
  });

  it('keeps every chunk within targetChars and never cuts inside a word', () => {
    const d = doc(
      'TEXT',
      `${sentences(0, 30)} ${'pneumonoultramicroscopicsilicovolcanoconiosis '.repeat(40)}\n\nfile.Name and x.Y are one token each.${sentences(60, 30)}`,
    );
    const chunks = chunkDocument(d, { targetChars: 300, overlapChars: 60 });
    const text = fullText(d);
    for (const c of chunks) {
      assert.ok(c.text.length <= 300, `chunk ${c.position} has ${c.text.length} chars`);
      assert.ok(isSpaceOrEdge(text[c.charStart - 1]) && isSpaceOrEdge(text[c.charEnd]), `chunk ${c.position} cuts a word`);
      assert.equal(c.text, c.text.trim());
    }
  });

  it('hard-splits a sentence longer than targetChars at whitespace, losing no word', () => {
    const words = Array.from({ length: 900 }, (_, i) => `w${i}`);
    const d = doc('TEXT', `${words.join(' ')} end.`);
    const chunks = chunkDocument(d, { targetChars: 400, overlapChars: 100 });
    assert.ok(chunks.length >= 10);
    for (const c of chunks) assert.ok(c.text.length <= 400);
    const seen = chunks.flatMap((c) => c.text.split(/\s+/));
    assert.deepEqual(seen, [...words, 'end.']); // pieces of one sentence: no sentence to repeat, so no overlap
    const sizes = chunks.map((c) => c.text.length);
    assert.ok(Math.min(...sizes) > 200, `pieces are balanced: ${sizes.join(', ')}`);
  });

  it('keeps a word longer than targetChars whole in a chunk of its own', () => {
    const long = 'x'.repeat(700);
    const d = doc('TEXT', `Before it. ${long} after it.`);
    const chunks = chunkDocument(d, { targetChars: 300, overlapChars: 50 });
    assert.ok(chunks.some((c) => c.text.includes(long)));
    assertExactSlices(d, chunks);
  });

  it('keeps a paragraph that fits in one chunk together rather than filling the previous chunk', () => {
    const p1 = sentences(0, 6);
    const p2 = sentences(20, 6);
    const d = doc('TEXT', `${p1}\n\n${p2}`);
    assert.ok(p1.length + p2.length > 500 && p1.length < 500 && p2.length < 500 && p1.length > 250);
    const chunks = chunkDocument(d, { targetChars: 500, overlapChars: 0 });
    assert.deepEqual(
      chunks.map((c) => c.text),
      [p1, p2],
    );
  });

  it('holds its invariants on 300 random documents', () => {
    let seed = 7;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const pick = <T>(list: T[]): T => list[Math.floor(rand() * list.length)]!;
    const word = () =>
      pick([
        'a',
        'cell',
        'energy',
        'mitochondrion',
        'ATP',
        'e.g.',
        'x.Y',
        '3.14',
        '—',
        'über',
        'naïve',
        'photosynthesis',
        'x'.repeat(70),
        'Stop!Go',
        'why?Because',
        'said.\u201cNo\u201d',
      ]);
    const sentence = () =>
      Array.from({ length: 1 + Math.floor(rand() * 30) }, word).join(pick([' ', ' ', ' ', '\n'])) + pick(['.', '!', '?', '', '.']);
    const paragraph = () =>
      rand() < 0.1
        ? `${pick(['#', '##', '###'])} ${word()} ${word()}`
        : Array.from({ length: 1 + Math.floor(rand() * 6) }, sentence).join(' ');
    const page = () =>
      rand() < 0.15
        ? pick(['', '  \n'])
        : Array.from({ length: Math.floor(rand() * 8) }, paragraph).join(pick(['\n\n', '\n\n\n', '\n \n']));
    for (let n = 0; n < 300; n++) {
      const d = doc(pick(['PDF', 'MARKDOWN', 'TEXT', 'HTML']), ...Array.from({ length: 1 + Math.floor(rand() * 4) }, page));
      const targetChars = 40 + Math.floor(rand() * 400);
      const overlapChars = Math.floor(rand() * targetChars * 0.5);
      const chunks = chunkDocument(d, { targetChars, overlapChars });
      const text = fullText(d);
      let covered = 0;
      chunks.forEach((c, i) => {
        assert.equal(text.slice(c.charStart, c.charEnd), c.text);
        assert.ok(c.text && c.text === c.text.trim());
        assert.ok(isSpaceOrEdge(text[c.charStart - 1]) && isSpaceOrEdge(text[c.charEnd]), 'cuts a word');
        assert.ok(
          c.text.length <= targetChars || !/\s/.test(c.text),
          `longer than ${targetChars} without being one word: ${JSON.stringify(c.text)}`,
        );
        const prev = chunks[i - 1];
        if (prev) {
          assert.ok(c.charStart > prev.charStart && c.charEnd > prev.charEnd, 'chunks advance');
          assert.ok(prev.charEnd - c.charStart <= overlapChars, 'overlap too long');
        }
        covered = Math.max(covered, c.charEnd);
      });
      // Every non-whitespace character belongs to some chunk.
      const inChunk = new Uint8Array(text.length);
      for (const c of chunks) inChunk.fill(1, c.charStart, c.charEnd);
      for (let k = 0; k < text.length; k++) if (!/\s/.test(text[k]!)) assert.equal(inChunk[k], 1, `char ${k} of doc ${n} lost`);
    }
  });

  it('is deterministic', () => {
    const a = chunkDocument(book, { targetChars: 450, overlapChars: 100 });
    const b = chunkDocument(structuredClone(book), { targetChars: 450, overlapChars: 100 });
    assert.deepEqual(a, b);
  });

  it('uses 1200/200 by default, orders pages by number and rejects impossible options', () => {
    const shuffled: ParsedDocument = {
      format: 'TEXT',
      pages: [
        { page: 2, text: 'Second page.' },
        { page: 1, text: 'First page.' },
      ],
    };
    assert.equal(fullText(shuffled), 'First page.\n\nSecond page.');
    const chunks = chunkDocument(shuffled);
    assert.deepEqual(
      chunks.map((c) => [c.text, c.pageStart, c.pageEnd]),
      [['First page.\n\nSecond page.', 1, 2]],
    );
    const long = doc('TEXT', sentences(0, 200));
    assert.ok(chunkDocument(long).every((c) => c.text.length <= 1200));
    assert.throws(() => chunkDocument(long, { targetChars: 100, overlapChars: 100 }), RangeError);
    assert.throws(() => chunkDocument(long, { targetChars: 0 }), RangeError);
    assert.deepEqual(chunkDocument(doc('PDF', '', '  ')), []);
  });
});
