/**
 * One pass over the course: every sentence of every passage with its page, the
 * reason it is skipped (if it is), its key terms and an informativeness score;
 * and the inventory of terms by kind that distractors are drawn from.
 */
import { extractTerms, knownNames, NAMED_KINDS, type KeyTerm, type TermKind } from './terms.js';
import { pageAt, sentenceSkipReason, splitSentences, terms } from './text.js';
import type { ExamPassage, SentenceSkipReason } from './types.js';

export interface CourseSentence {
  /** Position in `CourseAnalysis.sentences`. */
  index: number;
  passage: ExamPassage;
  passageIndex: number;
  /** Exact slice of the passage's text. */
  text: string;
  start: number;
  end: number;
  page: number;
  skip: SentenceSkipReason | null;
  terms: KeyTerm[];
  /** Stemmed terms of the sentence. */
  stems: Set<string>;
  /** Informativeness, higher is better (0 for skipped sentences). */
  score: number;
}

export interface InventoryTerm extends KeyTerm {
  documentId: string;
  chunkId: string;
  sentence: number;
}

export interface CourseAnalysis {
  sentences: CourseSentence[];
  usable: CourseSentence[];
  /** Terms of all sentences that are prose (usable, context-dependent, questions), by kind. */
  inventory: Map<TermKind, InventoryTerm[]>;
  skipped: Partial<Record<SentenceSkipReason, number>>;
}

/** Reasons whose sentences still lend their terms to the inventory (the text is prose). */
const PROSE_SKIPS: ReadonlySet<SentenceSkipReason | null> = new Set([null, 'context-dependent', 'question', 'too-long', 'too-short']);

function score(sentence: string, found: KeyTerm[], df: Map<string, number>, total: number): number {
  if (!found.length) return 0;
  const weights = found.map((t) => t.weight).sort((a, b) => b - a);
  const top = weights.slice(0, 3).reduce((a, b) => a + b, 0);
  const words = sentence.split(/\s+/).length;
  const stems = [...new Set(terms(sentence))];
  const idf = stems.length ? stems.reduce((a, t) => a + Math.log((1 + total) / (1 + (df.get(t) ?? 0))), 0) / stems.length : 0;
  const definitional = found.some((t) => t.definitional) ? 0.4 : 0;
  const named = found.some((t) => NAMED_KINDS.has(t.kind) || t.kind === 'YEAR' || t.kind === 'NUMBER') ? 0.2 : 0;
  const length = words < 8 ? -0.3 : words > 30 ? -0.4 : 0;
  return top + definitional + named + length + 0.3 * idf;
}

/**
 * One identity per person: a one-word mention ("Napoleon") that is a word of a
 * fuller name in the course ("Napoleon Bonaparte") takes that name's identity,
 * so that the two are never options of one question.
 */
function unifyPeople(sentences: CourseSentence[]): void {
  const byWord = new Map<string, string>();
  for (const s of sentences)
    for (const t of s.terms)
      if (t.kind === 'PERSON' && t.words >= 2)
        for (const w of t.text.toLowerCase().split(/\s+/)) if (w.length > 2 && !byWord.has(w)) byWord.set(w, t.identity);
  for (const s of sentences)
    for (const t of s.terms) if (t.kind === 'PERSON' && t.words === 1) t.identity = byWord.get(t.text.toLowerCase()) ?? t.identity;
}

const cache = new WeakMap<readonly ExamPassage[], CourseAnalysis>();

/** Analyses the passages (cached per passages array: do not mutate it afterwards). */
export function analyseCourse(passages: readonly ExamPassage[]): CourseAnalysis {
  const hit = cache.get(passages);
  if (hit) return hit;
  const sentences: CourseSentence[] = [];
  passages.forEach((passage, passageIndex) => {
    for (const span of splitSentences(passage.text)) {
      sentences.push({
        index: sentences.length,
        passage,
        passageIndex,
        text: span.text,
        start: span.start,
        end: span.end,
        page: pageAt(passage, span.start),
        skip: sentenceSkipReason(span.text, span.heading),
        terms: [],
        stems: new Set(terms(span.text)),
        score: 0,
      });
    }
  });
  const prose = sentences.filter((s) => PROSE_SKIPS.has(s.skip));
  // Two passes: the first finds the names the course uses, the second knows them at sentence starts.
  const known = knownNames(prose.flatMap((s) => extractTerms(s.text)));
  const df = new Map<string, number>();
  for (const s of prose) {
    s.terms = extractTerms(s.text, known);
    for (const t of s.stems) df.set(t, (df.get(t) ?? 0) + 1);
  }
  unifyPeople(prose);
  const skipped: Partial<Record<SentenceSkipReason, number>> = {};
  const usable: CourseSentence[] = [];
  for (const s of sentences) {
    if (!s.skip && !s.terms.length) s.skip = 'no-key-terms';
    if (s.skip) {
      skipped[s.skip] = (skipped[s.skip] ?? 0) + 1;
      continue;
    }
    s.score = score(s.text, s.terms, df, prose.length);
    usable.push(s);
  }
  const inventory = new Map<TermKind, InventoryTerm[]>();
  for (const s of prose) {
    for (const t of s.terms) {
      const list = inventory.get(t.kind) ?? [];
      list.push({ ...t, documentId: s.passage.documentId, chunkId: s.passage.chunkId, sentence: s.index });
      inventory.set(t.kind, list);
    }
  }
  const out = { sentences, usable, inventory, skipped };
  cache.set(passages, out);
  return out;
}
