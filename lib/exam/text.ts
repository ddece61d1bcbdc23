/**
 * Text helpers of the exam layer: folding and stemming for comparisons (terms are
 * those of lib/search/lexical.ts: lower-cased words, NLTK stop words dropped,
 * Snowball English stems), a sentence splitter that keeps exact offsets, the
 * sentence filter of the offline generator, and small metrics.
 */
import { tokenize, words } from '../search/lexical.js';
import type { ExamPassage, SentenceSkipReason } from './types.js';

/** Whitespace runs to one space, trimmed. */
export function collapse(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Typographic quotes, dashes and spaces to plain ASCII ones. */
function plainPunctuation(text: string): string {
  return text
    .normalize('NFKC')
    .replace(/[\u2018\u2019\u201b\u2032]/g, "'")
    .replace(/[\u201c\u201d\u201f\u2033]/g, '"')
    .replace(/[\u2010-\u2015\u2212]/g, '-')
    .replace(/\u00a0/g, ' ');
}

/** "1,000" → "1000", "17,000,000" → "17000000" (only digit groups of three). */
export function stripThousands(text: string): string {
  return text.replace(/\b\d{1,3}(?:,\d{3})+\b/g, (m) => m.replace(/,/g, ''));
}

/** For case/whitespace-insensitive equality: NFKC, plain quotes/dashes, lower case, collapsed whitespace. */
export function fold(text: string): string {
  return collapse(plainPunctuation(text).toLowerCase());
}

/** Lower-cased words (no stop-word removal, no stemming), numbers without thousands separators. */
export function plainWords(text: string): string[] {
  return words(stripThousands(plainPunctuation(text)));
}

/** The normalised terms of a text (lexical.ts `tokenize`, after removing thousands separators). */
export function terms(text: string): string[] {
  return tokenize(stripThousands(plainPunctuation(text)));
}

export function termSet(text: string): Set<string> {
  return new Set(terms(text));
}

/** Whether `needle` occurs as a contiguous run in `hay`. */
export function containsRun(hay: readonly string[], needle: readonly string[]): boolean {
  if (!needle.length) return false;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * Whether a text contains a term, normalised: the term's stems as a contiguous
 * run of the text's stems; a term made only of stop words is looked up as whole
 * words instead.
 */
export function containsTerm(text: string, term: string): boolean {
  const needle = terms(term);
  if (needle.length) return containsRun(terms(text), needle);
  const w = plainWords(term);
  return w.length > 0 && containsRun(plainWords(text), w);
}

export function jaccard<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): number {
  if (!a.size && !b.size) return 0;
  let inter = 0;
  for (const x of a) if (b.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

/** Levenshtein distance; stops early and returns `max + 1` once it exceeds `max`. */
export function editDistance(a: string, b: string, max = Infinity): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    prev = cur;
  }
  return prev[b.length]!;
}

export interface SentenceSpan {
  /** The exact slice `text.slice(start, end)`. */
  text: string;
  start: number;
  end: number;
  /** A heading line (Markdown `#`), reported so the filter can count it. */
  heading: boolean;
}

const ABBREVIATIONS = new Set(
  (
    'mr mrs ms dr prof sr jr st vs e.g i.e cf al fig figs eq eqs no nos vol vols pp p ed eds approx ca c gen gov lt col mt ' +
    'inc ltd co corp dept univ jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k a.d b.c ph.d'
  ).split(' '),
);

const BULLET = /^\s*(?:[-*•▪–]|\d{1,3}[.)])\s+/;

/** Units of text that sentences never cross: paragraphs, headings, list items, short title-like lines. */
function units(text: string): { start: number; end: number; heading: boolean }[] {
  const lines: { start: number; end: number }[] = [];
  const re = /[^\n]*(?:\n|$)/g;
  for (let m = re.exec(text); m && m[0].length; m = re.exec(text)) {
    const end = m.index + m[0].replace(/\n$/, '').length;
    lines.push({ start: m.index, end });
    if (re.lastIndex >= text.length) break;
  }
  const out: { start: number; end: number; heading: boolean }[] = [];
  let cur: { start: number; end: number } | null = null;
  const flush = () => {
    if (cur) out.push({ ...cur, heading: false });
    cur = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const body = text.slice(line.start, line.end);
    if (!body.trim()) {
      flush();
      continue;
    }
    if (/^\s*#/.test(body)) {
      flush();
      out.push({ ...line, heading: true });
      continue;
    }
    if (BULLET.test(body)) flush();
    if (cur) cur.end = line.end;
    else cur = { start: line.start, end: line.end };
    const next = lines[i + 1] ? text.slice(lines[i + 1]!.start, lines[i + 1]!.end) : '';
    const trimmed = body.trim();
    // A short line without closing punctuation followed by a capitalised line is a title or a table row.
    if (next.trim() && !/[.,;:!?\-–—)]$/.test(trimmed) && trimmed.length < 70 && /^\s*[\p{Lu}\d#]/u.test(next)) flush();
    else if (BULLET.test(next)) flush();
  }
  flush();
  return out;
}

/**
 * Sentences of a text with their exact offsets. Boundaries: paragraph breaks,
 * heading lines, list items, title-like lines, and `.`/`!`/`?` (with closing
 * quotes/brackets) followed by whitespace and anything but a lower-case letter
 * or a continuing punctuation mark — not after a known abbreviation or a
 * single capital initial.
 */
export function splitSentences(text: string): SentenceSpan[] {
  const out: SentenceSpan[] = [];
  const push = (start: number, end: number, heading: boolean) => {
    while (start < end && /\s/.test(text[start]!)) start++;
    while (end > start && /\s/.test(text[end - 1]!)) end--;
    if (end > start) out.push({ text: text.slice(start, end), start, end, heading });
  };
  for (const unit of units(text)) {
    if (unit.heading) {
      push(unit.start, unit.end, true);
      continue;
    }
    const body = text.slice(unit.start, unit.end);
    let from = 0;
    const re = /[.!?]+["'\u201d\u2019)\]]*(?=\s|$)/g;
    for (let m = re.exec(body); m; m = re.exec(body)) {
      const stop = m.index + m[0].length;
      const rest = body.slice(stop);
      const nextChar = rest.trimStart()[0];
      if (nextChar !== undefined && /[\p{Ll},;:)\]]/u.test(nextChar)) continue;
      if (m[0][0] === '.' && m[0].length === 1) {
        const before = /([\p{L}.]+)$/u.exec(body.slice(0, m.index))?.[1] ?? '';
        const word = before.toLowerCase();
        if (ABBREVIATIONS.has(word) || /^\p{Lu}$/u.test(before)) {
          if (nextChar !== undefined) continue;
        }
      }
      push(unit.start + from, unit.start + stop, false);
      from = stop;
    }
    push(unit.start + from, unit.end, false);
  }
  return out;
}

const PRONOUN_START =
  /^(?:he|she|it|they|them|his|her|its|their|this|these|those|that|such|there|here|both|another|the latter|the former)\b/i;
const REFERENCE =
  /https?:\/\/|\bwww\.|\bdoi\b|\bisbn\b|\bet al\b|\bpp?\.\s*\d|\(\s*(?:1[5-9]|20)\d{2}[a-z]?\s*\)|^(?:see(?: also)?|ref(?:erences?)?|sources?|bibliography|cited)\b|@\w/i;
const HEADING_START = /^(?:chapter|section|part|unit|lesson|table|figure|fig\.|exercise|appendix)\s+[\divxlc]+\b/i;

/** Why a sentence is not worth a question, or null when it is (key terms are checked later). */
export function sentenceSkipReason(sentence: string, heading = false): SentenceSkipReason | null {
  const s = collapse(sentence);
  if (heading || /^#/.test(s) || HEADING_START.test(s)) return 'heading';
  if (/\?["'\u201d\u2019)]*$/.test(s)) return 'question';
  if (REFERENCE.test(s)) return 'reference';
  const tokens = s.split(' ');
  const numeric = tokens.filter((t) => /^[\d.,%:/()–-]+$/.test(t) && /\d/.test(t)).length;
  if (numeric >= 5 || (tokens.length >= 4 && numeric / tokens.length > 0.3)) return 'numeric';
  if (!/[.!]["'\u201d\u2019)]*$/.test(s) || !/^["'\u201c\u2018(]?[\p{Lu}\d]/u.test(s)) return 'fragment';
  const opens = (s.match(/\(/g) ?? []).length;
  const closes = (s.match(/\)/g) ?? []).length;
  const quotes = (s.match(/"/g) ?? []).length;
  if (opens !== closes || quotes % 2 === 1) return 'fragment';
  if (tokens.length < 6 || s.length < 30) return 'too-short';
  if (tokens.length > 40 || s.length > 300) return 'too-long';
  if (PRONOUN_START.test(s)) return 'context-dependent';
  return null;
}

/** The page holding character `offset` of a passage's text. */
export function pageAt(passage: ExamPassage, offset: number): number {
  if (passage.pageStart === passage.pageEnd || !passage.pageBreaks?.length) return passage.pageStart;
  let page = passage.pageStart;
  for (const b of passage.pageBreaks) {
    if (offset >= b) page++;
    else break;
  }
  return Math.min(page, passage.pageEnd);
}

/** Whether `pageAt` gives the exact page of any offset of a passage. */
export function exactPages(passage: ExamPassage): boolean {
  return passage.pageStart === passage.pageEnd || !!passage.pageBreaks?.length;
}

/** "page 3", or "page 3 (passage pages 3–4, exact page unknown)" when it is not exact. */
export function pageLabel(source: { page: number; pageStart: number; pageEnd: number; pageExact?: boolean }): string {
  return source.pageExact === false
    ? `page ${source.page} (passage pages ${source.pageStart}-${source.pageEnd}, exact page unknown)`
    : `page ${source.page}`;
}

/** Where a sentence occurs in a passage's text: exactly, else with whitespace runs matched loosely; -1 when absent. */
export function locateSentence(passageText: string, sentence: string): { start: number; end: number } | null {
  const exact = passageText.indexOf(sentence);
  if (exact >= 0) return { start: exact, end: exact + sentence.length };
  const parts = collapse(sentence).split(' ').map(escapeRegExp);
  if (!parts.length || !parts[0]) return null;
  const m = new RegExp(parts.join('\\s+')).exec(passageText);
  return m ? { start: m.index, end: m.index + m[0].length } : null;
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const SCALE_WORDS: Record<string, number> = { thousand: 1e3, million: 1e6, billion: 1e9, trillion: 1e12 };

/**
 * The value of a text that is a number and nothing else ("1,000", "9.8",
 * "150 million", "-3"), or null.
 */
export function parseNumber(text: string): number | null {
  const m = /^\s*([-+]?)(\d{1,3}(?:,\d{3})+|\d+|(?=\.\d))(\.\d+)?(?:\s+(thousand|million|billion|trillion))?\s*$/i.exec(text);
  if (!m) return null;
  const value = Number(`${m[1]}${(m[2] ?? '').replace(/,/g, '') || '0'}${m[3] ?? ''}`);
  return Number.isFinite(value) ? value * (m[4] ? SCALE_WORDS[m[4].toLowerCase()]! : 1) : null;
}

/** A number that reads as a year: an integer 1000–2100 written with four digits. */
export function isYearText(text: string): boolean {
  return /^\s*(1\d{3}|20\d{2}|2100)\s*$/.test(text);
}

/** Template words of generated stems, removed before comparing stems for near-duplicates. */
const STEM_TEMPLATES = [/^\s*true or false:\s*/i, /^\s*what does the course say about\s+/i, /\s+known for\?\s*$/i, /_{3,}/g, /\ba\(n\)/gi];

/** A stem without the generators' template words, for near-duplicate comparison. */
export function stemContent(stem: string): string {
  let out = stem;
  for (const re of STEM_TEMPLATES) out = out.replace(re, ' ');
  return out;
}

export const BLANK = '_____';
export const TF_PREFIX = 'True or false: ';

/** The statement of a TRUE_FALSE stem (its "True or false:" prefix removed). */
export function tfStatement(stem: string): string {
  return stem.replace(/^\s*true or false:\s*/i, '');
}
