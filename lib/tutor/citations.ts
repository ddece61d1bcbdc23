/**
 * Grounding a generated answer: checks its `[n]` markers against the passages it was given and
 * picks, for each passage cited, the sentence the answer relies on.
 *
 * Markers. A marker group is text in square brackets, not followed by `(` (a Markdown link),
 * whose items, separated by `,` or `;`, are each a number ("[1]", "[1, 2]"), a range ("[1-3]"),
 * a number with a label ("[Passage 2]", "[source #2]") or a single word ("[abc]"). Adjacent
 * groups ("[1][2]") are separate groups. Anything else in brackets is left alone.
 *   - An item naming a given passage (`n` of one of `passages`) is valid.
 *   - Every other item ("[0]", "[99]", "[abc]", "[1-30]" past the passages) is dropped and
 *     counted in `droppedMarkers`.
 *   - A group whose items are all valid plain numbers is kept as written ("[1, 2]" stays);
 *     a group with dropped or labelled items is rewritten as "[a][b]" from its valid items,
 *     and removed (with the space before it) when none is valid.
 *
 * Quotes. A marker belongs to the answer sentence it is in, or to the sentence before when it
 * opens a sentence ("…energy. [1] Next…"). For each passage cited, `quote` is the sentence of
 * that passage most similar (cosine over terms) to one of the answer sentences carrying its
 * marker; ties go to the sentence most similar to all of them together, then to the earlier.
 * Quotes are sentences of `splitSentences(passage.text)`, verbatim (as normalised there).
 *
 * `grounded` is true when at least one valid citation remains.
 */
import { splitSentences, type Sentence } from './sentences.js';
import { cosine, terms } from './terms.js';
import type { Citation, GroundedAnswer, TutorPassage } from './types.js';

const GROUP = /[ \t]*\[([^[\]\n]{1,60})\](?!\()/gu;
const NUMBER_ITEM = /^(?:(?:passages?|sources?|refs?|references?|docs?|documents?)\s*)?#?\s*(\d{1,4})(?:\s*[-–]\s*(\d{1,4}))?$/iu;
const PLAIN_NUMBER = /^\d{1,4}$/u;
const WORD_ITEM = /^[\p{L}\p{N}_#.'’-]{1,30}$/u;
/** A range longer than this is not expanded (it is dropped as one item). */
const MAX_RANGE = 20;

interface ParsedGroup {
  valid: number[];
  dropped: number;
  /** All items valid plain numbers: keep the text as written. */
  keep: boolean;
}

/** Parses the inside of a bracket group; null when it is not a marker group. */
function parseGroup(inner: string, known: ReadonlySet<number>): ParsedGroup | null {
  const items = inner.split(/[,;]/u).map((s) => s.trim());
  if (items.some((item) => !NUMBER_ITEM.test(item) && !WORD_ITEM.test(item))) return null;
  const valid: number[] = [];
  let dropped = 0;
  let keep = true;
  for (const item of items) {
    const m = NUMBER_ITEM.exec(item);
    if (!m) {
      dropped++;
      keep = false;
      continue;
    }
    if (!PLAIN_NUMBER.test(item)) keep = false;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to - from > MAX_RANGE) {
      dropped++;
      continue;
    }
    for (let n = from; n <= to; n++) {
      if (known.has(n)) {
        if (!valid.includes(n)) valid.push(n);
      } else {
        dropped++;
        keep = false;
      }
    }
  }
  return { valid, dropped, keep: keep && valid.length > 0 };
}

export interface PlacedMarker {
  /** Offset of the group in the rewritten content. */
  at: number;
  indices: number[];
}

/** Rewrites the markers of `content` (see the rules above). */
export function checkMarkers(
  content: string,
  passages: readonly TutorPassage[],
): { content: string; dropped: number; markers: PlacedMarker[] } {
  const known = new Set(passages.map((p) => p.n));
  let out = '';
  let last = 0;
  let dropped = 0;
  const markers: PlacedMarker[] = [];
  for (const m of content.matchAll(GROUP)) {
    const parsed = parseGroup(m[1]!, known);
    if (!parsed) continue;
    out += content.slice(last, m.index);
    last = m.index + m[0].length;
    dropped += parsed.dropped;
    if (parsed.valid.length === 0) continue;
    const lead = /^[ \t]*/u.exec(m[0])![0];
    out += lead;
    markers.push({ at: out.length, indices: parsed.valid });
    out += parsed.keep ? m[0].slice(lead.length) : parsed.valid.map((n) => `[${n}]`).join('');
  }
  out += content.slice(last);
  return { content: out, dropped, markers };
}

/** `text` without marker groups, for comparing with passage sentences. */
function withoutMarkers(text: string): string {
  return text.replace(GROUP, ' ');
}

/** The sentence of `sentences` at or before offset `at` (a marker opening a sentence belongs to the one before). */
function carrierOf(sentences: readonly Sentence[], content: string, at: number): number {
  let i = sentences.findIndex((s) => at < s.end);
  if (i === -1) return sentences.length - 1;
  const s = sentences[i]!;
  if (at <= s.start || /^[\s[\]\d,;]*$/u.test(content.slice(s.start, at))) {
    if (i > 0) i--;
  }
  return i;
}

/**
 * The sentence of `passage` most similar to one of `carriers` (see the file's comment); the
 * first prose sentence when nothing is similar.
 */
export function bestQuote(passage: TutorPassage, carriers: readonly string[]): string {
  const sentences = splitSentences(passage.text);
  const prose = sentences.filter((s) => !s.heading);
  const pool = prose.length > 0 ? prose : sentences;
  if (pool.length === 0) return passage.text.trim();
  const carrierTerms = carriers.map((c) => terms(withoutMarkers(c)));
  const allTerms = carrierTerms.flat();
  let best = pool[0]!;
  let bestMax = 0;
  let bestAll = 0;
  for (const sentence of pool) {
    const st = terms(sentence.text);
    const max = Math.max(0, ...carrierTerms.map((ct) => cosine(ct, st)));
    const all = cosine(allTerms, st);
    if (max > bestMax || (max === bestMax && all > bestAll)) {
      best = sentence;
      bestMax = max;
      bestAll = all;
    }
  }
  return best.text;
}

/** The answer with its markers checked and a citation (with quote) per passage cited. */
export function groundAnswer(content: string, passages: readonly TutorPassage[]): GroundedAnswer {
  const checked = checkMarkers(content, passages);
  const sentences = splitSentences(checked.content);
  const carriers = new Map<number, Set<number>>();
  const order: number[] = [];
  for (const marker of checked.markers) {
    const carrier = sentences.length > 0 ? carrierOf(sentences, checked.content, marker.at) : -1;
    for (const n of marker.indices) {
      if (!carriers.has(n)) {
        carriers.set(n, new Set());
        order.push(n);
      }
      if (carrier >= 0) carriers.get(n)!.add(carrier);
    }
  }
  const byN = new Map(passages.map((p) => [p.n, p]));
  const citations: Citation[] = order.map((n) => {
    const passage = byN.get(n)!;
    let texts = [...carriers.get(n)!].map((i) => sentences[i]!.text);
    // A marker alone ("Sources: [1]") carries nothing to compare: use the whole answer.
    if (texts.every((t) => terms(withoutMarkers(t)).length === 0)) texts = [checked.content];
    return {
      index: n,
      chunkId: passage.chunkId,
      documentId: passage.documentId,
      pageStart: passage.pageStart,
      pageEnd: passage.pageEnd,
      quote: bestQuote(passage, texts),
    };
  });
  return { content: checked.content, citations, grounded: citations.length > 0, droppedMarkers: checked.dropped };
}
