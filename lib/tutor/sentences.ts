/**
 * Sentence splitting for passage text (chunks of PDF, Markdown, HTML or plain text).
 *
 * `splitSentences(text)` returns the sentences in order, each with `start`/`end` offsets into
 * `text` (the span starts and ends on a non-space character) and `text`, the span normalised
 * for display and quoting: `normalizeSentence(text.slice(start, end))`, i.e. a word broken by a
 * hyphen at a line end is joined ("photo-\nsynthesis" → "photosynthesis"; before a capital or
 * a digit the hyphen stays: "Estates-\nGeneral" → "Estates-General"), runs of whitespace
 * (line breaks included) become one space, and a Markdown heading loses its `#`s.
 *
 * Where sentences end:
 *   - at a blank line (paragraph), and around a heading line (`#`) or a list item line
 *     (`-`, `*`, `•`, `1.`, `1)`, `(a)`), which stand alone; a single line break is a space;
 *   - after `.`, `!`, `?`, `…` (and runs such as `?!` or `...`), with any closing quotes or
 *     brackets, when whitespace and then a character that can start a sentence follow
 *     (anything but a lower-case letter or `,;:)`), but not after
 *       - a decimal point, a URL or file name dot, `e.g`'s inner dot (no whitespace follows),
 *       - an abbreviation that is always followed by more text ("Dr.", "e.g.", "Fig.", "vs.", …),
 *         or one followed by a number ("No. 5", "p. 12", "Sept. 1792"),
 *       - a dotted abbreviation or initialism ("U.S.", "a.m."), even when it does end a sentence,
 *       - an initial ("J. K. Rowling", "I. Newton"),
 *       - a list number at the start of a line ("1. Introduction").
 * Segments without any letter or digit (stray punctuation, rules) are dropped; a segment that
 * is only a number (a page number) is kept, as a sentence.
 */

export interface Sentence {
  /** The sentence, normalised (see `normalizeSentence`). */
  text: string;
  /** Offset of its first character in the text given to `splitSentences`. */
  start: number;
  /** Offset just past its last character. */
  end: number;
  /** A Markdown heading line (`# …`), not prose. */
  heading: boolean;
}

/** Abbreviations that are always followed by more of the same sentence (lower-cased, inner dots kept). */
const PREFIX_ABBREVIATIONS: ReadonlySet<string> = new Set(
  ('mr mrs ms mx dr prof st sr jr rev hon gen col lt capt sgt gov pres mt ft fig figs eq eqs cf vs viz al ca approx ' + 'e.g i.e').split(
    ' ',
  ),
);

/** Abbreviations that end no sentence when a number follows ("No. 5", "p. 12", "Sept. 1792"); "no." alone can. */
const NUMBER_ABBREVIATIONS: ReadonlySet<string> = new Set(
  'no nos p pp vol vols ch chap sec para art jan feb mar apr jun jul aug sep sept oct nov dec'.split(' '),
);

const TERMINATOR = /[.!?…]/u;
const CLOSER = /["'”’)\]»]/u;
const LIST_ITEM = /^(?:[-*•–]\s|\d{1,2}[.)]\s|\((?:[a-z]|\d{1,2}|[ivx]{1,4})\)\s|[a-z]\)\s)/u;
const HEADING = /^#{1,6}\s/u;

/** Joins words hyphenated across a line break ("photo-\nsynthesis" → "photosynthesis"; "Estates-\nGeneral" → "Estates-General"). */
export function joinHyphenated(text: string): string {
  return text.replace(/(\p{Ll})-[ \t]*\r?\n\s*(\p{Ll})/gu, '$1$2').replace(/(\p{L})-[ \t]*\r?\n\s*(?=\p{Lu}|\p{N})/gu, '$1-');
}

/** A sentence span as it is displayed and quoted: hyphenated line breaks joined, whitespace collapsed, heading marks removed. */
export function normalizeSentence(raw: string): string {
  return joinHyphenated(raw)
    .replace(/^#{1,6}\s+/u, '')
    .replace(/\s+/gu, ' ')
    .trim();
}

interface Unit {
  start: number;
  end: number;
  heading: boolean;
}

/** Lines grouped into units that no sentence crosses: paragraphs, headings, list items. */
function units(text: string): Unit[] {
  const out: Unit[] = [];
  let current: Unit | null = null;
  const lineRe = /[^\n]*(?:\n|$)/gu;
  let m: RegExpExecArray | null;
  while ((m = lineRe.exec(text)) !== null) {
    if (m[0] === '') break;
    const lineStart = m.index;
    const line = m[0].replace(/\r?\n$/u, '');
    const lineEnd = lineStart + line.length;
    const trimmed = line.trimStart();
    const contentStart = lineStart + (line.length - trimmed.length);
    if (trimmed.trim() === '') {
      if (current) out.push(current);
      current = null;
      continue;
    }
    if (HEADING.test(trimmed)) {
      if (current) out.push(current);
      out.push({ start: contentStart, end: lineEnd, heading: true });
      current = null;
      continue;
    }
    if (LIST_ITEM.test(trimmed) && current) {
      out.push(current);
      current = null;
    }
    if (current) current.end = lineEnd;
    else current = { start: contentStart, end: lineEnd, heading: false };
  }
  if (current) out.push(current);
  return out;
}

/** The word just before `i` (letters, digits and inner dots), e.g. "e.g" before the final dot of "e.g.". */
function wordBefore(text: string, i: number, floor: number): { word: string; start: number } {
  let j = i;
  while (j > floor && /[\p{L}\p{N}.]/u.test(text[j - 1]!)) j--;
  // A word cannot start with a dot ("...").
  while (j < i && text[j] === '.') j++;
  return { word: text.slice(j, i), start: j };
}

function isBoundary(text: string, unit: Unit, termStart: number, termEnd: number, next: number): boolean {
  const after = text[next];
  if (after === undefined) return true;
  if (/\p{Ll}/u.test(after) || /[,;:)\]]/u.test(after)) return false;
  const run = text.slice(termStart, termEnd);
  if (run !== '.') return true;
  const { word, start } = wordBefore(text, termStart, unit.start);
  if (word === '') return true;
  const lower = word.toLowerCase();
  if (PREFIX_ABBREVIATIONS.has(lower)) return false;
  if (NUMBER_ABBREVIATIONS.has(lower) && /\p{N}/u.test(after)) return false;
  // Dotted abbreviations and initialisms ("e.g", "U.S", "a.m"): taken as never ending a sentence.
  if (/^(?:\p{L}\.)+\p{L}$/u.test(word)) return false;
  // An initial: a single capital letter.
  if (/^\p{Lu}$/u.test(word)) return false;
  // A list number at the start of the unit ("1. Introduction").
  if (start === unit.start && /^(?:\d{1,3}|[ivxlc]{1,5})$/iu.test(word)) return false;
  return true;
}

/** The sentences of a passage, in order, with offsets into `text`. */
export function splitSentences(text: string): Sentence[] {
  const out: Sentence[] = [];
  const push = (start: number, end: number, heading: boolean) => {
    while (start < end && /\s/u.test(text[start]!)) start++;
    while (end > start && /\s/u.test(text[end - 1]!)) end--;
    if (end <= start) return;
    const raw = text.slice(start, end);
    if (!/[\p{L}\p{N}]/u.test(raw)) return;
    out.push({ text: normalizeSentence(raw), start, end, heading });
  };
  for (const unit of units(text)) {
    if (unit.heading) {
      push(unit.start, unit.end, true);
      continue;
    }
    let sentenceStart = unit.start;
    let i = unit.start;
    while (i < unit.end) {
      if (!TERMINATOR.test(text[i]!)) {
        i++;
        continue;
      }
      const termStart = i;
      while (i < unit.end && TERMINATOR.test(text[i]!)) i++;
      const termEnd = i;
      while (i < unit.end && CLOSER.test(text[i]!)) i++;
      const closeEnd = i;
      if (closeEnd < unit.end && !/\s/u.test(text[closeEnd]!)) continue;
      let next = closeEnd;
      while (next < unit.end && /\s/u.test(text[next]!)) next++;
      if (next >= unit.end || isBoundary(text, unit, termStart, termEnd, next)) {
        push(sentenceStart, closeEnd, false);
        sentenceStart = next;
      }
      i = next;
    }
    push(sentenceStart, unit.end, false);
  }
  return out;
}
