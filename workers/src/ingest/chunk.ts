/**
 * Structure-aware chunking of a parsed document.
 *
 * Offsets. The document's full text is its pages' texts joined with "\n\n" in page order, empty
 * pages included (`fullText`). Every chunk is an exact slice of it:
 * `fullText(doc).slice(chunk.charStart, chunk.charEnd) === chunk.text`, with no whitespace
 * rewritten, so a chunk can be located, highlighted or re-read from the stored text. A chunk
 * starts and ends on a non-whitespace character, and never inside a word: the character before
 * `charStart` and the one at `charEnd` are whitespace (or the text's ends).
 *
 * Splitting. The text is cut into sections at headings (`#` lines, and Markdown/plain-text
 * "setext" underlines, never inside ``` fences), sections into paragraphs (blank lines),
 * paragraphs into sentences (`Intl.Segmenter`, locale "en" for the same result on every
 * machine), and only a sentence longer than `targetChars` is cut, at whitespace (preferably
 * after , ; :). Chunks pack whole sentences up to `targetChars` characters of text; when the
 * next sentence does not fit and its paragraph would fit in a chunk of its own, the chunk ends
 * at that paragraph's start instead (if it is at least half full), so paragraphs stay together.
 * A chunk is longer than `targetChars` only when a single word is.
 *
 * Overlap. A chunk after the first of a section starts with the last whole sentences of the
 * chunk before it, as many as fit in `overlapChars` characters and still leave the chunk within
 * `targetChars` (so it can be fewer, or none, next to a long sentence). Consecutive chunks'
 * ranges then overlap: `next.charStart < previous.charEnd`. Overlap never crosses a heading.
 *
 * Headings. A section's heading line is the start of its first chunk; `heading` is the
 * heading's text without `#`. A heading with no text of its own before the next heading (a
 * chapter title followed by a section title) starts the next section's first chunk.
 *
 * Pages. `pageStart`/`pageEnd` are the pages holding the chunk's first and last character;
 * empty pages produce nothing but keep their numbers.
 */
import type { Chunk, ParsedDocument, ParsedPage } from './types.js';

export interface ChunkOptions {
  targetChars: number;
  overlapChars: number;
}

export const DEFAULT_CHUNK_OPTIONS: ChunkOptions = { targetChars: 1200, overlapChars: 200 };

/** The text chunk offsets point into: pages in page order, joined with "\n\n". */
export function fullText(doc: ParsedDocument): string {
  return sortedPages(doc)
    .map((p) => p.text)
    .join('\n\n');
}

function sortedPages(doc: ParsedDocument) {
  return [...doc.pages].sort((a, b) => a.page - b.page);
}

interface Block {
  kind: 'heading' | 'paragraph';
  start: number;
  end: number;
  heading?: string;
}

interface Atom {
  start: number;
  end: number;
  /** Index of the paragraph within its section; headings have their own. */
  para: number;
  heading: boolean;
}

interface Section {
  heading: string | null;
  atoms: Atom[];
  /** [start, end] of each paragraph, by `para`. */
  paras: [number, number][];
}

const isSpace = (ch: string | undefined) => ch !== undefined && /\s/.test(ch);

/** [start, end) with surrounding whitespace removed; null when only whitespace. */
function trimSpan(text: string, start: number, end: number): [number, number] | null {
  let s = start;
  let e = end;
  while (s < e && isSpace(text[s])) s++;
  while (e > s && isSpace(text[e - 1])) e--;
  return s < e ? [s, e] : null;
}

const ATX = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;

/** Headings and paragraphs, with offsets into `text`. */
function blocks(text: string, format: ParsedDocument['format']): Block[] {
  const out: Block[] = [];
  const fences = format !== 'PDF';
  const setext = format === 'MARKDOWN' || format === 'TEXT';
  let fence: string | null = null;
  let para: { start: number; end: number; lines: [number, number][] } | null = null;
  const endParagraph = () => {
    if (!para) return;
    const [first, second] = para.lines;
    if (setext && para.lines.length === 2 && !fence && SETEXT.test(text.slice(second![0], second![1]))) {
      const title = text.slice(first![0], first![1]).trim();
      out.push({ kind: 'heading', start: para.start, end: para.end, heading: title });
    } else out.push({ kind: 'paragraph', start: para.start, end: para.end });
    para = null;
  };
  let pos = 0;
  while (pos <= text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    const line = text.slice(pos, nl);
    const span = trimSpan(text, pos, nl);
    const marker = fences ? FENCE.exec(line)?.[1] : undefined;
    if (marker && (fence === null || (marker[0] === fence[0] && marker.length >= fence.length))) {
      fence = fence === null ? marker : null;
    }
    const atx = fence === null && !marker ? ATX.exec(line) : null;
    const headingText = atx?.[2]?.trim();
    if (!span) endParagraph();
    else if (headingText) {
      endParagraph();
      out.push({ kind: 'heading', start: span[0], end: span[1], heading: headingText });
    } else {
      para ??= { start: span[0], end: span[1], lines: [] };
      para.end = span[1];
      para.lines.push(span);
    }
    pos = nl + 1;
  }
  endParagraph();
  return out;
}

const segmenter = new Intl.Segmenter('en', { granularity: 'sentence' });

/** Sentence spans of text[start, end), merged where a boundary is not at whitespace ("file.Name"). */
function sentences(text: string, start: number, end: number): [number, number][] {
  // Line breaks are paragraph separators to the segmenter; inside a paragraph they are only wrapping.
  const flat = text.slice(start, end).replace(/[\n\r\u0085\u2028\u2029]/g, ' ');
  const spans: [number, number][] = [];
  for (const { index, segment } of segmenter.segment(flat)) {
    const span = trimSpan(text, start + index, start + index + segment.length);
    if (!span) continue;
    const last = spans[spans.length - 1];
    if (last && !isSpace(text[span[0] - 1])) last[1] = span[1];
    else spans.push(span);
  }
  return spans;
}

/**
 * Cuts text[start, end) into pieces of at most `max` characters at whitespace, of about equal
 * length (no tiny last piece), preferring a cut after , ; or : near the ideal point. A single
 * word longer than `max` stays whole.
 */
function hardSplit(text: string, start: number, end: number, max: number): [number, number][] {
  const pieces: [number, number][] = [];
  let pos = start;
  while (end - pos > max) {
    const goal = pos + Math.ceil((end - pos) / Math.ceil((end - pos) / max));
    let cut = -1;
    // Backwards from the goal; a cut after punctuation wins within a quarter of the goal length either side.
    const lo = pos + Math.floor((goal - pos) * 0.75);
    const hi = Math.min(pos + max, goal + Math.floor((goal - pos) / 4));
    for (let i = hi; i >= lo; i--) {
      if (isSpace(text[i]) && !isSpace(text[i - 1]) && /[,;:]/.test(text[i - 1] ?? '')) {
        cut = i;
        break;
      }
    }
    for (let i = goal; cut < 0 && i > pos; i--) if (isSpace(text[i])) cut = i;
    for (let i = goal + 1; cut < 0 && i <= pos + max; i++) if (isSpace(text[i])) cut = i;
    if (cut < 0) {
      // One word longer than max: keep it whole.
      cut = pos + max;
      while (cut < end && !isSpace(text[cut])) cut++;
    }
    const piece = trimSpan(text, pos, cut);
    if (piece) pieces.push(piece);
    pos = cut;
    while (pos < end && isSpace(text[pos])) pos++;
  }
  const rest = trimSpan(text, pos, end);
  if (rest) pieces.push(rest);
  return pieces;
}

function sections(text: string, format: ParsedDocument['format'], target: number): Section[] {
  const out: Section[] = [];
  let current: Section = { heading: null, atoms: [], paras: [] };
  for (const block of blocks(text, format)) {
    if (block.kind === 'heading') {
      out.push(current);
      current = { heading: block.heading!, atoms: [], paras: [] };
    }
    const para = current.paras.length;
    current.paras.push([block.start, block.end]);
    if (block.kind === 'heading') {
      for (const [s, e] of hardSplit(text, block.start, block.end, target)) current.atoms.push({ start: s, end: e, para, heading: true });
      continue;
    }
    for (const [s, e] of sentences(text, block.start, block.end)) {
      const pieces = e - s > target ? hardSplit(text, s, e, target) : [[s, e] as [number, number]];
      for (const [ps, pe] of pieces) current.atoms.push({ start: ps, end: pe, para, heading: false });
    }
  }
  out.push(current);
  return out;
}

interface Draft {
  atoms: Atom[];
  heading: string | null;
}

/** Packs one section's atoms (see the file comment). */
function pack(section: Section, target: number, overlap: number): Draft[] {
  const drafts: Draft[] = [];
  let atoms: Atom[] = [];
  let overlapCount = 0;
  const span = (list: Atom[]) => (list.length ? list[list.length - 1]!.end - list[0]!.start : 0);

  for (const atom of section.atoms) {
    if (!atoms.length || atom.end - atoms[0]!.start <= target) {
      atoms.push(atom);
      continue;
    }
    // `atom` does not fit. End the chunk at its paragraph's start if that paragraph fits in a chunk of its own.
    let cut = atoms.length;
    const [pStart, pEnd] = section.paras[atom.para]!;
    const first = atoms.findIndex((a, i) => i >= overlapCount && a.para === atom.para);
    if (first > overlapCount && pEnd - pStart <= target && atoms[first - 1]!.end - atoms[0]!.start >= target / 2) cut = first;
    const emitted = atoms.slice(0, cut);
    const carried = atoms.slice(cut);
    drafts.push({ atoms: emitted, heading: section.heading });
    // Overlap: trailing sentences of the emitted chunk, within `overlap` and leaving room for what follows.
    const next = [...carried, atom];
    const nextEnd = next[next.length - 1]!.end;
    let from = emitted.length;
    while (from > 0) {
      const candidate = emitted[from - 1]!;
      if (candidate.heading) break;
      if (emitted[emitted.length - 1]!.end - candidate.start > overlap || nextEnd - candidate.start > target) break;
      from--;
    }
    const tail = emitted.slice(from);
    // A chunk is never only repeated text: with nothing new before `atom`, drop the overlap.
    atoms = [...tail, ...next];
    overlapCount = tail.length;
    if (span(atoms) > target && tail.length) {
      atoms = next;
      overlapCount = 0;
    }
  }
  if (atoms.length > overlapCount) drafts.push({ atoms, heading: section.heading });
  return drafts;
}

/**
 * Chunks a document. For PDFs a page break is a hard boundary, like a heading: a chunk never
 * spans two pages, so every passage cites exactly one page. Each page is chunked on its own;
 * offsets still point into the whole document's text, and a page that starts mid-section
 * carries the heading it continues.
 */
export function chunkDocument(doc: ParsedDocument, opts: Partial<ChunkOptions> = {}): Chunk[] {
  if (doc.format !== 'PDF' || doc.pages.length <= 1) return chunkText(doc, opts);
  const next = pageByPage(doc.format, opts);
  return sortedPages(doc).flatMap(next);
}

/** A PDF's pages chunked one at a time, in page order: offsets, positions and the heading carried on. */
function pageByPage(format: ParsedDocument['format'], opts: Partial<ChunkOptions>): (page: ParsedPage) => Chunk[] {
  let position = 0;
  let offset = 0;
  let heading: string | null = null;
  return (page) => {
    const out: Chunk[] = [];
    for (const c of chunkText({ format, pages: [{ page: page.page, text: page.text }] }, opts)) {
      heading = c.heading ?? heading;
      out.push({ ...c, position: position++, charStart: c.charStart + offset, charEnd: c.charEnd + offset, heading: c.heading ?? heading });
    }
    offset += page.text.length + 2;
    return out;
  };
}

export interface PageChunker {
  /**
   * A page as it arrives (in any order; each once). Returns the chunks it completes: a PDF's
   * chunks of every page up to the first one still missing, positions counting on. Other formats
   * are chunked as a whole by `finish`.
   */
  add(page: ParsedPage): Chunk[];
  /** The rest of the document's chunks, once it is parsed: pages `add` never saw, or the whole text. */
  finish(doc: ParsedDocument): Chunk[];
}

/**
 * Chunks a document while it is parsed, page by page, with exactly the chunks `chunkDocument`
 * gives for the whole document (same texts, pages, offsets, headings, positions): a PDF's pages
 * are chunked on their own anyway.
 */
export function createPageChunker(format: ParsedDocument['format'], opts: Partial<ChunkOptions> = {}): PageChunker {
  const waiting = new Map<number, ParsedPage>();
  const chunkPage = pageByPage(format, opts);
  let nextPage = 1;
  let added = 0;
  const release = (): Chunk[] => {
    const out: Chunk[] = [];
    for (let page = waiting.get(nextPage); page; page = waiting.get(nextPage)) {
      waiting.delete(nextPage++);
      out.push(...chunkPage(page));
    }
    return out;
  };
  return {
    add(page) {
      if (format !== 'PDF') return [];
      added++;
      waiting.set(page.page, page);
      return release();
    },
    finish(doc) {
      if (format !== 'PDF' || (doc.pages.length <= 1 && added === 0)) return chunkText(doc, opts);
      // The pages not chunked yet (the document has them all), in page order.
      return sortedPages(doc)
        .filter((page) => page.page >= nextPage)
        .flatMap(chunkPage);
    },
  };
}

function chunkText(doc: ParsedDocument, opts: Partial<ChunkOptions>): Chunk[] {
  const { targetChars: target, overlapChars: overlap } = { ...DEFAULT_CHUNK_OPTIONS, ...opts };
  if (!Number.isInteger(target) || target < 1) throw new RangeError(`targetChars must be a positive integer, got ${target}`);
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= target) {
    throw new RangeError(`overlapChars must be an integer within 0..targetChars-1, got ${overlap}`);
  }
  const pages = sortedPages(doc);
  const text = fullText(doc);
  const pageStarts: number[] = [];
  let offset = 0;
  for (const page of pages) {
    pageStarts.push(offset);
    offset += page.text.length + 2;
  }
  const pageAt = (pos: number): number => {
    let lo = 0;
    let hi = pageStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (pageStarts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return pages[lo]!.page;
  };

  const drafts: Draft[] = [];
  let pending: Atom[] = []; // headings of sections that had no text of their own
  let pendingHeading: string | null = null;
  for (const section of sections(text, doc.format, target)) {
    if (!section.atoms.length) continue;
    if (!section.atoms.some((a) => !a.heading)) {
      pending.push(...section.atoms);
      pendingHeading = section.heading;
      continue;
    }
    if (pending.length) {
      // Pending headings open this section, as if part of its own heading line.
      section.atoms = [...pending.map((a) => ({ ...a, para: 0 })), ...section.atoms];
      section.paras[0] = [pending[0]!.start, section.paras[0]![1]];
      pending = [];
    }
    drafts.push(...pack(section, target, overlap));
  }
  if (pending.length) {
    const paras: [number, number][] = [[pending[0]!.start, pending[pending.length - 1]!.end]];
    drafts.push(...pack({ heading: pendingHeading, atoms: pending.map((a) => ({ ...a, para: 0 })), paras }, target, overlap));
  }

  return drafts.map(({ atoms, heading }, position) => {
    const charStart = atoms[0]!.start;
    const charEnd = atoms[atoms.length - 1]!.end;
    return {
      position,
      text: text.slice(charStart, charEnd),
      pageStart: pageAt(charStart),
      pageEnd: pageAt(charEnd - 1),
      charStart,
      charEnd,
      heading,
    };
  });
}
