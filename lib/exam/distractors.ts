/**
 * Distractors of the key's kind, from the same course.
 *
 * - Years: other years of the course near the key (window 60 / 25 / 12 years for
 *   EASY / MEDIUM / HARD), then the key moved by plausible offsets (±1…±50 by
 *   difficulty) and its last two digits swapped (1789 → 1798); never after the
 *   latest year the course mentions, and inside a range the sentence states
 *   ("between _____ and 1815" gets years before 1815).
 * - Numbers: other numbers of the course with the same unit word, the key's
 *   digits swapped (9.8 → 8.9), scaled (×0.5…×2, rounded to the key's
 *   significant digits: 17,000 → 20,000) and stepped in its last digit
 *   (9.8 → 9.6, 10.2); formatted like the key (decimals, thousands separators,
 *   "million").
 * - Named terms (people, places, organisations, events, celestial bodies,
 *   acronyms, other names): terms of the same kind, the same document first.
 * - Concepts and noun phrases: other concepts and noun phrases, the same
 *   document, kind, grammatical number (inflected when needed) and suffix
 *   (osmosis → mitosis, meiosis) first.
 *
 * Never: the key itself or a variant of it (a subset of its words, a person
 * sharing a name), anything in the source sentence, or a term that another
 * sentence of the course states in the same context (it might be true too).
 */
import type { CourseAnalysis, CourseSentence, InventoryTerm } from './course.js';
import type { Random } from './random.js';
import { inflect, NAMED_KINDS, type KeyTerm, type TermKind } from './terms.js';
import { containsTerm, escapeRegExp, fold, terms } from './text.js';
import type { Difficulty } from './types.js';

export interface Distractor {
  text: string;
  /** Numbers and years. */
  value?: number;
  identity: string;
  stems: Set<string>;
}

export interface DistractorContext {
  course: CourseAnalysis;
  sentence: CourseSentence;
  key: KeyTerm;
  difficulty: Difficulty;
  rng: Random;
}

const SCALE: Record<string, number> = { thousand: 1e3, million: 1e6, billion: 1e9, trillion: 1e12 };

/** A value written the way the key is written. */
export function formatLike(value: number, key: KeyTerm): string {
  const scale = key.scale ? SCALE[key.scale]! : 1;
  const base = value / scale;
  let text = base.toFixed(key.decimals ?? 0);
  if (key.grouping) {
    const [int, frac] = text.split('.');
    text = int!.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (frac ? `.${frac}` : '');
  }
  return key.scale ? `${text} ${key.scale}` : text;
}

function significantDigits(base: number, decimals: number): number {
  if (decimals > 0) return String(Math.round(Math.abs(base) * 10 ** decimals)).replace(/^0+/, '').length;
  return Math.max(1, String(Math.round(Math.abs(base))).replace(/0+$/, '').length);
}

function roundTo(value: number, digits: number): number {
  if (value === 0) return 0;
  const magnitude = Math.floor(Math.log10(Math.abs(value))) + 1;
  const factor = 10 ** (magnitude - digits);
  return Math.round(value / factor) * factor;
}

/** Whether another sentence of the course says the candidate in the key's context (then it may be true too). */
function statedElsewhere(candidate: string, ctx: DistractorContext): boolean {
  const keyStems = new Set(terms(ctx.key.text));
  const context = [...ctx.sentence.stems].filter((t) => !keyStems.has(t));
  if (!context.length) return false;
  const candStems = terms(candidate);
  for (const s of ctx.course.sentences) {
    if (s.index === ctx.sentence.index) continue;
    if (candStems.length && !candStems.every((t) => s.stems.has(t))) continue;
    if (!containsTerm(s.text, candidate)) continue;
    const shared = context.filter((t) => s.stems.has(t)).length;
    if (shared / context.length >= 0.5) return true;
  }
  return false;
}

/** Whether the course links the two terms by a copula ("enzymes are proteins", "the mitochondrion is the organelle"). */
function linkedByCopula(a: string, b: string, ctx: DistractorContext, bothWays = true): boolean {
  const words = (t: string) => escapeRegExp(t.toLowerCase()).replace(/\s+/g, '\\s+');
  const re = (x: string, y: string) =>
    new RegExp(`\\b${words(x)}\\s+(?:is|are|was|were)\\s+(?:(?:a|an|the|one|of)\\s+)*(?:[\\p{L}-]+\\s+){0,2}${words(y)}`, 'u');
  const ab = re(a, b);
  const ba = bothWays ? re(b, a) : null;
  return ctx.course.sentences.some((s) => {
    const t = s.text.toLowerCase();
    return ab.test(t) || !!ba?.test(t);
  });
}

function numericPool(ctx: DistractorContext): Distractor[] {
  const { key, difficulty, rng, course, sentence } = ctx;
  const value = key.value!;
  const scale = key.scale ? SCALE[key.scale]! : 1;
  const decimals = key.decimals ?? 0;
  const scored = new Map<number, number>();
  const add = (v: number, s: number) => {
    const rounded = Number(v.toFixed(decimals + Math.round(Math.log10(scale))));
    if (!Number.isFinite(rounded) || rounded === value) return;
    if (value > 0 && rounded <= 0) return;
    if (Math.abs(rounded) > 1e15) return;
    scored.set(rounded, Math.max(scored.get(rounded) ?? -Infinity, s + rng.next() * 0.5));
  };
  if (key.kind === 'YEAR') {
    const window = difficulty === 'EASY' ? 60 : difficulty === 'HARD' ? 12 : 25;
    const offsets =
      difficulty === 'EASY' ? [15, 20, 25, 30, 40, 50] : difficulty === 'HARD' ? [1, 2, 3, 4, 5, 7, 10] : [3, 5, 7, 10, 13, 15, 20, 25];
    for (const t of course.inventory.get('YEAR') ?? []) {
      const d = Math.abs(t.value! - value);
      if (d > 0 && d <= window) add(t.value!, 3 - d / window);
    }
    for (const o of offsets) {
      add(value + o, 2 - o / 100);
      add(value - o, 2 - o / 100);
    }
    const s = String(value);
    const swapped = Number(s.slice(0, 2) + s[3] + s[2]);
    if (Math.abs(swapped - value) <= window) add(swapped, 2.2);
    // A range in the sentence ("between 1814 and 1815", "from 1795 until 1799") bounds the distractors.
    const before = sentence.text.slice(0, key.start);
    const after = sentence.text.slice(key.end);
    const upper = /^\s*(?:and|to|until|till|[-\u2013])\s*(\d{4})\b/.exec(after)?.[1];
    const lower = /\b(\d{4})\s*(?:and|to|until|till|[-\u2013])\s*$/.exec(before)?.[1];
    // Never later than the latest year the course mentions (a pure function has no clock to know "now").
    const latest = Math.max(value, ...(course.inventory.get('YEAR') ?? []).map((t) => t.value!));
    for (const [v] of scored) {
      if (v < 1000 || v > latest || !Number.isInteger(v)) scored.delete(v);
      else if ((upper && v >= Number(upper)) || (lower && v <= Number(lower))) scored.delete(v);
    }
  } else {
    const base = value / scale;
    const digits = significantDigits(base, decimals);
    const step = 10 ** -decimals;
    // Other numbers of the course with the same unit word and scale.
    for (const t of course.inventory.get('NUMBER') ?? []) {
      if (t.unit && t.unit === key.unit && (t.scale ?? '') === (key.scale ?? '') && (t.decimals ?? 0) === decimals) {
        const ratio = t.value! / value;
        if (ratio > 0.05 && ratio < 20) add(t.value!, 3);
      }
    }
    // Digit swaps: 9.8 → 8.9, 46 → 64.
    const raw = base.toFixed(decimals).replace('.', '');
    for (let i = 0; i + 1 < raw.length; i++) {
      if (raw[i] === raw[i + 1]) continue;
      const swapped = raw.slice(0, i) + raw[i + 1] + raw[i] + raw.slice(i + 2);
      if (swapped[0] === '0' && swapped.length > 1) continue;
      const v = Number(swapped) / 10 ** decimals;
      if (v / base >= 0.5 && v / base <= 2) add(v * scale, 2.5);
    }
    const factors =
      difficulty === 'EASY' ? [0.25, 0.5, 2, 3, 4] : difficulty === 'HARD' ? [0.8, 0.9, 1.1, 1.2, 1.25] : [0.5, 0.75, 1.25, 1.5, 2];
    for (const f of factors) {
      const v = decimals > 0 ? Number((base * f).toFixed(decimals)) : roundTo(base * f, digits);
      if (decimals === 0 && !Number.isInteger(v)) continue;
      add(v * scale, 2 - Math.abs(Math.log(f)) / 3);
    }
    // Steps in the last digit, for decimals and small integers (larger ones are scaled instead).
    if (decimals > 0 || base < 100) {
      const steps = difficulty === 'HARD' ? [1, 2, 3] : difficulty === 'EASY' ? [5, 8, 10] : [2, 4, 5];
      for (const k of steps) {
        add((base + k * step) * scale, 1.5 - k / 20);
        add((base - k * step) * scale, 1.5 - k / 20);
      }
    }
  }
  const out: Distractor[] = [];
  const seen = new Set<string>();
  for (const [v] of [...scored].sort((a, b) => b[1] - a[1])) {
    const text = key.kind === 'YEAR' ? String(v) : formatLike(v, key);
    const f = fold(text);
    if (seen.has(f) || f === fold(key.text)) continue;
    if (containsTerm(sentence.text, text) || statedElsewhere(text, ctx)) continue;
    seen.add(f);
    out.push({ text, value: v, identity: f, stems: new Set(terms(text)) });
  }
  return out;
}

function commonSuffix(a: string, b: string): number {
  let n = 0;
  while (n < a.length && n < b.length && a[a.length - 1 - n] === b[b.length - 1 - n]) n++;
  return n;
}

const subsetOf = (a: ReadonlySet<string>, b: ReadonlySet<string>) => a.size > 0 && [...a].every((t) => b.has(t));

/** Whether two terms are too close to be different options (same identity, one's words within the other's, a person sharing a name). */
export function tooClose(
  a: { identity: string; stems: Set<string>; value?: number },
  b: { identity: string; stems: Set<string>; value?: number },
  person = false,
): boolean {
  if (a.identity === b.identity) return true;
  if (a.value !== undefined && b.value !== undefined) return a.value === b.value;
  if (subsetOf(a.stems, b.stems) || subsetOf(b.stems, a.stems)) return true;
  if (person && [...a.stems].some((t) => b.stems.has(t))) return true;
  return false;
}

function termPool(ctx: DistractorContext): Distractor[] {
  const { key, course, sentence, difficulty, rng } = ctx;
  const named = NAMED_KINDS.has(key.kind);
  const kinds: TermKind[] = named ? [key.kind] : ['CONCEPT', 'NOUN_PHRASE'];
  const keyStems = new Set(terms(key.text));
  const person = key.kind === 'PERSON';
  const keyHead = key.text.toLowerCase().split(/\s+/).pop() ?? '';
  const sameDoc = difficulty === 'EASY' ? 1 : 2;
  const samePassage = difficulty === 'HARD' ? 1 : difficulty === 'EASY' ? -0.5 : 0.3;
  const scored: { t: InventoryTerm; score: number }[] = [];
  for (const kind of kinds) {
    for (const t of course.inventory.get(kind) ?? ([] as InventoryTerm[])) {
      let score = rng.next() * 0.8;
      if (t.documentId === sentence.passage.documentId) score += sameDoc;
      if (t.chunkId === sentence.passage.chunkId) score += samePassage;
      score += (person ? 1.5 : 0.5) * Math.max(0, 1 - Math.abs(t.words - key.words) / 3);
      if (!named) {
        if (t.kind === key.kind) score += 1;
        if (t.plural === key.plural) score += 0.5;
        const suffix = commonSuffix(keyHead, t.text.toLowerCase().split(/\s+/).pop() ?? '');
        if (suffix >= 4) score += 2;
        else if (suffix >= 3) score += 1.5;
      }
      scored.push({ t, score });
    }
  }
  scored.sort((a, b) => b.score - a.score);
  const keyRef = { identity: person ? key.identity : [...keyStems].join(' '), stems: keyStems };
  const out: Distractor[] = [];
  const seen = new Set<string>();
  // Enough for any use (3 options, 1 swap, arrangement); stop early, inflection is costly.
  for (const { t } of scored) {
    if (out.length >= 8) break;
    let text = t.display;
    // Singular nouns are made plural for a plural key ("cell" → "cells"); plurals are not made singular (too error-prone).
    if (!named && t.plural !== key.plural) {
      if (!key.plural || /(?:sis|ity|ion|ism|ics|ure|y|ment|ance|ence|ness|ing|um)$/i.test(text)) continue;
      const inflected = inflect(text, true);
      if (fold(inflected) === fold(text) || !/s$/i.test(inflected)) continue;
      text = inflected;
    }
    // A surname key gets surname distractors.
    if (person && key.words === 1 && t.words >= 2) {
      const last = text.split(/\s+/).pop()!;
      if (!/^[IVXLC]+$/.test(last)) text = last;
    }
    const stems = new Set(terms(text));
    if (!stems.size) continue;
    const d: Distractor = { text, identity: person ? t.identity : [...stems].join(' '), stems };
    if (seen.has(d.identity) || tooClose(d, keyRef, person)) continue;
    seen.add(d.identity);
    if (containsTerm(sentence.text, d.text) || statedElsewhere(d.text, ctx)) continue;
    if (
      !named &&
      (linkedByCopula(key.text, d.text, ctx) ||
        linkedByCopula(key.text, t.text, ctx) ||
        (keyHead !== key.text.toLowerCase() && linkedByCopula(keyHead, t.text, ctx, false)))
    )
      continue;
    out.push(d);
  }
  return out;
}

/** Candidate distractors for a key, best first; each on its own acceptable (pick mutually distinct ones with `pickDistinct`). */
export function distractorPool(ctx: DistractorContext): Distractor[] {
  return ctx.key.kind === 'YEAR' || ctx.key.kind === 'NUMBER' ? numericPool(ctx) : termPool(ctx);
}

/** The first n of a pool that are pairwise distinct enough (and distinct from `taken`). */
export function pickDistinct(pool: readonly Distractor[], n: number, person: boolean, taken: readonly Distractor[] = []): Distractor[] {
  const out: Distractor[] = [];
  for (const d of pool) {
    if (out.length >= n) break;
    if ([...taken, ...out].some((o) => tooClose(d, o, person))) continue;
    out.push(d);
  }
  return out;
}
