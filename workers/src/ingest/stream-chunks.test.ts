import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeLargePdf, makeTextPdf, writeFixture } from '../../../tests/support/pdf-fixtures.js';
import { chunkDocument, createPageChunker } from './chunk.js';
import { parseDocument } from './parse.js';
import type { Chunk, ParsedDocument, ParsedPage } from './types.js';

const limits = { maxPages: 1000, maxChars: 5_000_000, timeoutMs: 60_000, memoryLimitMb: 512 };
const opts = { targetChars: 600, overlapChars: 120 };

/** A deterministic shuffle (pages read by OCR arrive out of order). */
function shuffled<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Chunks as the worker makes them: pages added as they arrive, then the rest when the parse ends. */
function streamed(doc: ParsedDocument, arrivals: ParsedPage[]): { chunks: Chunk[]; beforeEnd: number } {
  const chunker = createPageChunker(doc.format, opts);
  const chunks = arrivals.flatMap((p) => chunker.add(p));
  const beforeEnd = chunks.length;
  return { chunks: [...chunks, ...chunker.finish(doc)], beforeEnd };
}

describe('chunks streamed page by page', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stream-chunks-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('are exactly those of the whole document for a generated 40-page PDF, in arrival order or shuffled', async () => {
    const path = await writeFixture(join(dir, 'book.pdf'), makeLargePdf(40));
    const arrivals: ParsedPage[] = [];
    const parsed = await parseDocument({
      path,
      format: 'PDF',
      ...limits,
      onPage: (page, _pages, info) => arrivals.push({ page, text: info.text }),
    });
    expect(arrivals).toHaveLength(40);
    expect(arrivals).toEqual(parsed.pages); // the text the callback gets is the result's
    const whole = chunkDocument(parsed, opts);
    expect(whole.length).toBeGreaterThan(80);

    const inOrder = streamed(parsed, arrivals);
    expect(inOrder.chunks).toEqual(whole);
    // Every chunk was ready before the parse ended: nothing was left for the end.
    expect(inOrder.beforeEnd).toBe(whole.length);

    const mixed = streamed(parsed, shuffled(arrivals, 7));
    expect(mixed.chunks).toEqual(whole);
    expect(mixed.chunks.map((c) => c.position)).toEqual(whole.map((_, i) => i));
  }, 60_000);

  it('carry headings across pages and keep empty pages, as the whole document does', async () => {
    const pdf = makeTextPdf(
      [
        ['Photosynthesis turns light into chemical energy. Chlorophyll absorbs red and blue light.'],
        [],
        ['The Calvin cycle fixes carbon dioxide into sugars. It runs in the stroma of the chloroplast.'],
        ['Cellular respiration releases the energy stored in glucose. Mitochondria make most of the ATP.'],
      ],
      { headings: ['1. Light reactions', null, null, '2. Respiration'] },
    );
    const path = await writeFixture(join(dir, 'headings.pdf'), pdf);
    const arrivals: ParsedPage[] = [];
    const parsed = await parseDocument({
      path,
      format: 'PDF',
      ...limits,
      onPage: (page, _p, info) => arrivals.push({ page, text: info.text }),
    });
    const whole = chunkDocument(parsed, opts);
    const { chunks } = streamed(parsed, shuffled(arrivals, 3));
    expect(chunks).toEqual(whole);
    expect(chunks.find((c) => c.pageStart === 3)?.heading).toBe('1. Light reactions');
    expect(chunks.find((c) => c.pageStart === 4)?.heading).toBe('2. Respiration');
    expect(chunks.some((c) => c.pageStart === 2)).toBe(false);
  }, 60_000);

  it('leave other formats, and pages never added, to the end', () => {
    const md: ParsedDocument = { format: 'MARKDOWN', pages: [{ page: 1, text: '# Title\n\nOne sentence. Another one.' }] };
    const chunker = createPageChunker('MARKDOWN', opts);
    expect(chunker.add(md.pages[0]!)).toEqual([]);
    expect(chunker.finish(md)).toEqual(chunkDocument(md, opts));

    const pdf: ParsedDocument = {
      format: 'PDF',
      pages: [1, 2, 3].map((page) => ({ page, text: `Page ${page} says something. And then some more about page ${page}.` })),
    };
    const partial = createPageChunker('PDF', opts);
    const early = partial.add(pdf.pages[0]!);
    expect(partial.add(pdf.pages[2]!)).toEqual([]); // page 2 is missing: page 3 waits
    expect([...early, ...partial.finish(pdf)]).toEqual(chunkDocument(pdf, opts));
  });
});
