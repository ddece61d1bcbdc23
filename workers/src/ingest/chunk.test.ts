import { describe, expect, it } from '@jest/globals';
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

/** Every chunk's text is its slice of the full text (a failure's diff names the chunk by its index). */
function expectExactSlices(d: ParsedDocument, chunks: Chunk[]): void {
  const text = fullText(d);
  expect(chunks.map((c) => text.slice(c.charStart, c.charEnd))).toEqual(chunks.map((c) => c.text));
}

/** The characters on either side of a chunk are whitespace or the edge of the text: the chunk cuts no word. */
function expectWordEdges(text: string, c: Chunk): void {
  const edge = expect.stringMatching(/^\s?$/);
  expect({ position: c.position, before: text[c.charStart - 1] ?? '', after: text[c.charEnd] ?? '' }).toEqual({
    position: c.position,
    before: edge,
    after: edge,
  });
}

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
    expect(chunks.length).toBeGreaterThan(8);
    expectExactSlices(book, chunks);
    expect(chunks.map((c) => c.position)).toEqual(chunks.map((_, i) => i));
    expect(fullText(book)).toMatch(/^# Cells\n\nSentence 0/);
  });

  it('maps chunks to the pages holding their first and last characters, skipping empty pages', () => {
    const chunks = chunkDocument(book, { targetChars: 500, overlapChars: 120 });
    for (const c of chunks) {
      expect(c.text.trim()).not.toBe(''); // no empty chunk
      expect(c.pageStart).toBeLessThanOrEqual(c.pageEnd);
      // No chunk on an empty page.
      expect([2, 4]).not.toContain(c.pageStart);
      expect([2, 4]).not.toContain(c.pageEnd);
      if (c.pageStart === c.pageEnd) expect(book.pages[c.pageStart - 1]!.text).toContain(c.text);
    }
    const onPage = (n: number, s: number) => chunks.some((c) => c.pageStart <= n && c.pageEnd >= n && c.text.includes(`Sentence ${s} `));
    expect([onPage(1, 105), onPage(3, 210), onPage(3, 310), onPage(5, 402)]).toEqual([true, true, true, true]);
  });

  it('never lets a PDF chunk span two pages, so every passage cites one page', () => {
    const d = doc(
      'PDF',
      `# Cells\n\n${sentences(0, 2)}\n\n${sentences(10, 12)}\n\nShort end of page one.`,
      'Short start of page two.\n\n' + sentences(20, 12),
    );
    const chunks = chunkDocument(d, { targetChars: 400, overlapChars: 100 });
    expect(chunks.filter((c) => c.pageStart !== c.pageEnd)).toEqual([]);
    const end = chunks.find((c) => c.text.includes('Short end of page one.'));
    const start = chunks.find((c) => c.text.includes('Short start of page two.'));
    expect(end?.pageStart).toBe(1);
    expect(start?.pageStart).toBe(2);
    expect(start?.heading).toBe('Cells'); // page two continues the section of page one
    expect(chunks.map((c) => c.position)).toEqual(chunks.map((_, i) => i));
    expectExactSlices(d, chunks);
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
    expectExactSlices(md, chunks);
    expect(chunks[0]!.heading).toBeNull();
    expect(chunks[0]!.text).toBe('Intro before any heading.');
    // "# Chapter 1" has no text of its own: it opens the first chunk of the next section.
    expect(chunks[1]!.text).toMatch(/^# Chapter 1\n\n## Photosynthesis\n\nSentence 0 /);
    expect(chunks[1]!.heading).toBe('Photosynthesis');
    const fenced = chunks.find((c) => c.text.includes('# not a heading'));
    expect(fenced?.heading).toBe('Photosynthesis');
    const resp = chunks.filter((c) => /Sentence 5\d /.test(c.text));
    expect(resp.length).toBeGreaterThan(0);
    expect(resp.map((c) => c.heading)).toEqual(resp.map(() => 'Respiration'));
    expect(chunks.map((c) => c.text)).toEqual(expect.arrayContaining([expect.stringMatching(/^## Respiration ##/)]));
    expect(chunks[chunks.length - 1]!.heading).toBe('Setext title');
    // No chunk holds text from two sections.
    expect(chunks.filter((c) => c.text.includes('Sentence 7 ') && c.text.includes('Sentence 50 '))).toEqual([]);
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
        expect(next.charStart).toBeGreaterThanOrEqual(prev.charEnd); // no overlap across a heading
        expect(next.text).toMatch(/^# B/);
        continue;
      }
      const shared = prev.charEnd - next.charStart;
      expect(shared).toBeLessThanOrEqual(overlapChars);
      if (shared > 0) {
        overlaps++;
        // prev.text ends with the shared part.
        expect(prev.text.slice(-shared)).toBe(text.slice(next.charStart, prev.charEnd));
        // The repeated part starts at a sentence start.
        expect(next.text).toMatch(/^Sentence \d+ /);
        expect(text.slice(0, next.charStart)).toMatch(/[.]\s+$/);
      }
    }
    expect(overlaps).toBeGreaterThanOrEqual(chunks.length - 3);
  });

  it('keeps every chunk within targetChars and never cuts inside a word', () => {
    const d = doc(
      'TEXT',
      `${sentences(0, 30)} ${'pneumonoultramicroscopicsilicovolcanoconiosis '.repeat(40)}\n\nfile.Name and x.Y are one token each.${sentences(60, 30)}`,
    );
    const chunks = chunkDocument(d, { targetChars: 300, overlapChars: 60 });
    const text = fullText(d);
    for (const c of chunks) {
      expect(c.text.length).toBeLessThanOrEqual(300);
      expectWordEdges(text, c);
      expect(c.text).toBe(c.text.trim());
    }
  });

  it('hard-splits a sentence longer than targetChars at whitespace, losing no word', () => {
    const words = Array.from({ length: 900 }, (_, i) => `w${i}`);
    const d = doc('TEXT', `${words.join(' ')} end.`);
    const chunks = chunkDocument(d, { targetChars: 400, overlapChars: 100 });
    expect(chunks.length).toBeGreaterThanOrEqual(10);
    for (const c of chunks) expect(c.text.length).toBeLessThanOrEqual(400);
    const seen = chunks.flatMap((c) => c.text.split(/\s+/));
    expect(seen).toEqual([...words, 'end.']); // pieces of one sentence: no sentence to repeat, so no overlap
    const sizes = chunks.map((c) => c.text.length);
    expect(Math.min(...sizes)).toBeGreaterThan(200); // pieces are balanced
  });

  it('keeps a word longer than targetChars whole in a chunk of its own', () => {
    const long = 'x'.repeat(700);
    const d = doc('TEXT', `Before it. ${long} after it.`);
    const chunks = chunkDocument(d, { targetChars: 300, overlapChars: 50 });
    expect(chunks.map((c) => c.text)).toEqual(expect.arrayContaining([expect.stringContaining(long)]));
    expectExactSlices(d, chunks);
  });

  it('keeps a paragraph that fits in one chunk together rather than filling the previous chunk', () => {
    const p1 = sentences(0, 6);
    const p2 = sentences(20, 6);
    const d = doc('TEXT', `${p1}\n\n${p2}`);
    expect(p1.length + p2.length).toBeGreaterThan(500);
    expect(p1.length).toBeLessThan(500);
    expect(p2.length).toBeLessThan(500);
    expect(p1.length).toBeGreaterThan(250);
    const chunks = chunkDocument(d, { targetChars: 500, overlapChars: 0 });
    expect(chunks.map((c) => c.text)).toEqual([p1, p2]);
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
        expect(text.slice(c.charStart, c.charEnd)).toBe(c.text);
        expect(c.text).not.toBe('');
        expect(c.text).toBe(c.text.trim());
        expectWordEdges(text, c);
        // Longer than targetChars only when it is one word.
        if (c.text.length > targetChars) expect(c.text).not.toMatch(/\s/);
        const prev = chunks[i - 1];
        if (prev) {
          // Chunks advance.
          expect(c.charStart).toBeGreaterThan(prev.charStart);
          expect(c.charEnd).toBeGreaterThan(prev.charEnd);
          expect(prev.charEnd - c.charStart).toBeLessThanOrEqual(overlapChars); // overlap not too long
        }
        covered = Math.max(covered, c.charEnd);
      });
      // Every non-whitespace character belongs to some chunk.
      const inChunk = new Uint8Array(text.length);
      for (const c of chunks) inChunk.fill(1, c.charStart, c.charEnd);
      const lost: number[] = [];
      for (let k = 0; k < text.length; k++) if (!/\s/.test(text[k]!) && inChunk[k] !== 1) lost.push(k);
      expect({ doc: n, lost }).toEqual({ doc: n, lost: [] });
    }
  });

  it('is deterministic', () => {
    const a = chunkDocument(book, { targetChars: 450, overlapChars: 100 });
    const b = chunkDocument(structuredClone(book), { targetChars: 450, overlapChars: 100 });
    expect(a).toStrictEqual(b);
  });

  it('uses 1200/200 by default, orders pages by number and rejects impossible options', () => {
    const shuffled: ParsedDocument = {
      format: 'TEXT',
      pages: [
        { page: 2, text: 'Second page.' },
        { page: 1, text: 'First page.' },
      ],
    };
    expect(fullText(shuffled)).toBe('First page.\n\nSecond page.');
    const chunks = chunkDocument(shuffled);
    expect(chunks.map((c) => [c.text, c.pageStart, c.pageEnd])).toEqual([['First page.\n\nSecond page.', 1, 2]]);
    const long = doc('TEXT', sentences(0, 200));
    expect(Math.max(...chunkDocument(long).map((c) => c.text.length))).toBeLessThanOrEqual(1200);
    expect(() => chunkDocument(long, { targetChars: 100, overlapChars: 100 })).toThrow(RangeError);
    expect(() => chunkDocument(long, { targetChars: 0 })).toThrow(RangeError);
    expect(chunkDocument(doc('PDF', '', '  '))).toStrictEqual([]);
  });
});
