/**
 * The offline engine: answers built only from sentences of the passages, for when no model is
 * configured. It never writes a claim of its own: an EXPLAIN answer is a lead-in followed by
 * quoted sentences with their `[n]`; a SOCRATIC hint shows one sentence with its key term
 * blanked, where to reread, and a question back.
 *
 * Sentence scoring. Every prose sentence of every passage is a candidate; headings, and the
 * titles PDF text does not mark as such ("5.2 Register Allocation", "Figure 4. x86 snippet…",
 * a short line with no final punctuation) are not. A sentence's score is BM25 over sentences
 * (k1 1.2, b 0.75, IDF over the candidate sentences) of the question's content terms, each also
 * weighted by `rarity` (terms.ts), and by 0.5 when carried into a follow-up from the question
 * before ("how many programs does it contain? (about: benchmark suite)": what the follow-up
 * asks comes first, the carried words only break ties), with a small boost when the sentence
 * has what the question type asks for (a year or date for "when", a name for "who", a number
 * for "how many/much", not a reference such as "(3)"). Its relevance is 0.75 × score / best
 * score + 0.25 × its passage's weighted share of the question's terms (as in coverage.ts), so
 * among sentences that match alike, those of the passage about the question come first; a
 * sentence that matches no question term is never chosen. Selection is MMR: the best sentence
 * first, then the one maximising 0.7·relevance − 0.3·(highest similarity to a chosen
 * sentence), skipping near-duplicates (term cosine ≥ 0.6, e.g. the overlap between consecutive
 * chunks) and sentences under half the best one's relevance, up to `maxSentences` (1–4,
 * default 3).
 *
 * Context. With room for two sentences or more, the best one is read with its neighbours in its
 * paragraph: the sentence before it when it opens by pointing back ("This is in contrast to…":
 * without its antecedent it says nothing), and the sentence after it when that one shares a term
 * with the question or opens by pointing back ("If there are no free registers, a value is
 * selected for spilling. We use a heuristic that selects the oldest…": a question restates the
 * set-up, the answer often follows). They come first, in text order, and take the places of the
 * lowest-ranked sentences; with both, the answer may have one sentence more (four at most).
 */
import nlp from 'compromise/two';
import { coverage, passageTerms, type CoverageOptions, type CoverageResult } from './coverage.js';
import { splitStandalone, standaloneQuestion } from './followup.js';
import { pageLabel } from './prompt.js';
import { splitSentences } from './sentences.js';
import { COMMON_WORDS, cosine, hasTerm, QUESTION_FILLER, questionTerms, rarity, sameTerm, specificTerms, terms } from './terms.js';
import type { Citation, GroundedAnswer, HistoryTurn, TutorMode, TutorPassage } from './types.js';

/** What `notCoveredAnswer` says. */
export const NOT_COVERED_TEXT =
  "The course material doesn't cover this question, so I can't answer it from the course. Try asking it with the words your course uses, or ask your teacher.";

/** The lead-in of an extractive answer. */
export const EXTRACTIVE_LEAD = 'From the course material:';

/**
 * The offline engine's version, part of the answer cache's key as PROMPT_VERSION is for the
 * model: bump it whenever the ranking, coverage or templates change, so no stale offline answer
 * is replayed after a deploy.
 */
export const OFFLINE_VERSION = 'offline-2';

/** The blank that replaces the answer term in a SOCRATIC hint. */
export const BLANK = '_____';

const BM25_K1 = 1.2;
const BM25_B = 0.75;
const MMR_LAMBDA = 0.7;
const DUPLICATE_SIMILARITY = 0.6;
const MIN_RELATIVE_RELEVANCE = 0.5;
const TYPE_BOOST = 1.25;
/** Share of a sentence's relevance that comes from its passage (the weighted share of the question's terms it holds). */
const PASSAGE_WEIGHT = 0.25;
/** Weight of a word carried into a follow-up from the question before, relative to the follow-up's own words. */
const CARRIED_WEIGHT = 0.5;
/** A sentence that opens by pointing back to the one before it ("This is…", "Thus…", "As a result…"). */
const CONTINUES =
  /^(?:this|these|that|those|it|its|they|their|such|thus|hence|so|therefore|then|as a result|in essence|in this way|in other words|for example|for instance|that is)\b/iu;

/** A sentence of a passage, scored against a question. */
export interface ScoredSentence {
  passage: TutorPassage;
  text: string;
  /** Offsets in `passage.text`. */
  start: number;
  end: number;
  terms: string[];
  relevance: number;
}

type QuestionType = 'when' | 'who' | 'count' | 'other';

/** The kind of answer asked for, from the question's first interrogative ("why does it go on when…" is not a "when"). */
function questionType(question: string): QuestionType {
  const m = /\b(how many|how much|what year|which year|what date|which century|when|whom|whose|who|why|how|what|which|where)\b/u.exec(
    question.toLowerCase(),
  );
  const w = m?.[1] ?? '';
  if (w === 'how many' || w === 'how much') return 'count';
  if (w === 'when' || w === 'what year' || w === 'which year' || w === 'what date' || w === 'which century') return 'when';
  if (w === 'who' || w === 'whom' || w === 'whose') return 'who';
  return 'other';
}

const YEAR_OR_DATE =
  /\b(1[0-9]{3}|20[0-9]{2})\b|\b(January|February|March|April|May|June|July|August|September|October|November|December)\b|\bcentury\b/u;
/** A capitalised word that does not open the sentence. */
const NAME = /(?<=[\p{L}\p{N},;:)] )\p{Lu}\p{Ll}+/u;
const NUMBER = /\p{N}/u;

/** A reference to a cited work or a figure, "(3)", "[12]": a number that is no quantity. */
const REFERENCE = /[([]\d{1,3}[)\]]/gu;

function hasTypeEvidence(type: QuestionType, sentence: string): boolean {
  if (type === 'when') return YEAR_OR_DATE.test(sentence);
  if (type === 'who') return NAME.test(sentence);
  if (type === 'count') return NUMBER.test(sentence.replace(REFERENCE, ''));
  return false;
}

/** Words of a short line that is a title rather than a sentence ("5.2 Register Allocation", "Figure 3"). */
const MAX_LABEL_WORDS = 6;

/**
 * A heading or label that is not marked as one (PDF text has no `#`): a short line that does
 * not end like a sentence ("5.2 Register Allocation", "Symbol Key"), a numbered section title,
 * or the title of a figure or table ("Figure 4. x86 snippet for sample program.").
 */
function isLabel(text: string): boolean {
  const words = text.split(/\s+/u).length;
  // A figure's or table's title: "Figure 4. x86 snippet for sample program."
  if (/^(?:Figure|Fig\.|Table)\s+\d+[.:]/u.test(text) && words <= MAX_LABEL_WORDS + 3) return true;
  if (/^\d+(?:\.\d+)*\.?\s+\p{Lu}[^.!?]*$/u.test(text) && words <= MAX_LABEL_WORDS + 2) return true;
  return words <= MAX_LABEL_WORDS && !/[.!?…:;"”’)\]]$/u.test(text);
}

/** The prose sentences of the passages (not headings or labels, at least two terms), unscored. */
function candidateSentences(passages: readonly TutorPassage[]): ScoredSentence[] {
  const out: ScoredSentence[] = [];
  for (const passage of passages) {
    for (const s of splitSentences(passage.text)) {
      if (s.heading || isLabel(s.text)) continue;
      const t = terms(s.text);
      if (t.length >= 2) out.push({ passage, text: s.text, start: s.start, end: s.end, terms: t, relevance: 0 });
    }
  }
  return out;
}

/** The prose sentences of the passages, scored against the question, best first (ties: passage order, then text order). */
export function rankSentences(question: string, passages: readonly TutorPassage[]): ScoredSentence[] {
  const specific = specificTerms(question);
  // A follow-up made standalone: what it asks weighs more than the topic words carried from before.
  const { question: own, carried } = splitStandalone(question);
  const ownTerms = carried.length > 0 ? new Set(questionTerms(own)) : null;
  const qTerms = questionTerms(question).map((term) => ({
    term,
    weight: rarity(term, specific) * (ownTerms && ownTerms.size > 0 && !ownTerms.has(term) ? CARRIED_WEIGHT : 1),
  }));
  const candidates = candidateSentences(passages);
  if (candidates.length === 0 || qTerms.length === 0) return [];
  const avgLen = candidates.reduce((sum, c) => sum + c.terms.length, 0) / candidates.length;
  const type = questionType(question);
  const idf = new Map<string, number>();
  for (const { term } of qTerms) {
    const df = candidates.filter((c) => c.terms.some((t) => sameTerm(t, term))).length;
    idf.set(term, Math.log(1 + (candidates.length - df + 0.5) / (df + 0.5)));
  }
  const raw = candidates.map((c) => {
    let score = 0;
    for (const { term, weight } of qTerms) {
      const tf = c.terms.filter((t) => sameTerm(t, term)).length;
      if (tf === 0) continue;
      const norm = tf + BM25_K1 * (1 - BM25_B + (BM25_B * c.terms.length) / avgLen);
      score += weight * idf.get(term)! * ((tf * (BM25_K1 + 1)) / norm);
    }
    return score > 0 && hasTypeEvidence(type, c.text) ? score * TYPE_BOOST : score;
  });
  const maxRaw = Math.max(...raw);
  if (maxRaw <= 0) return [];
  const totalWeight = qTerms.reduce((sum, t) => sum + t.weight, 0);
  const shares = new Map(
    passages.map((p) => {
      const inPassage = passageTerms(p);
      return [p, qTerms.reduce((sum, t) => sum + (hasTerm(inPassage, t.term) ? t.weight : 0), 0) / totalWeight];
    }),
  );
  candidates.forEach((c, i) => {
    c.relevance = raw[i]! > 0 ? (1 - PASSAGE_WEIGHT) * (raw[i]! / maxRaw) + PASSAGE_WEIGHT * shares.get(c.passage)! : 0;
  });
  // Array.prototype.sort is stable: equal scores keep passage and text order.
  return candidates.filter((c) => c.relevance > 0).sort((a, b) => b.relevance - a.relevance);
}

/** MMR selection over ranked sentences (see the file's comment). */
export function selectSentences(ranked: readonly ScoredSentence[], maxSentences: number): ScoredSentence[] {
  const max = Math.min(4, Math.max(1, Math.floor(maxSentences)));
  const top = ranked[0];
  if (!top) return [];
  const chosen: ScoredSentence[] = [top];
  const rest = ranked.slice(1).filter((c) => c.relevance >= MIN_RELATIVE_RELEVANCE * top.relevance);
  while (chosen.length < max) {
    let best: ScoredSentence | null = null;
    let bestScore = -Infinity;
    for (const c of rest) {
      if (chosen.includes(c)) continue;
      const similarity = Math.max(...chosen.map((s) => cosine(s.terms, c.terms)));
      if (similarity >= DUPLICATE_SIMILARITY) continue;
      const mmr = MMR_LAMBDA * (c.relevance / top.relevance) - (1 - MMR_LAMBDA) * similarity;
      if (mmr > bestScore) {
        best = c;
        bestScore = mmr;
      }
    }
    if (!best) break;
    chosen.push(best);
  }
  return chosen;
}

function citationOf(passage: TutorPassage, quote: string): Citation {
  return {
    index: passage.n,
    chunkId: passage.chunkId,
    documentId: passage.documentId,
    pageStart: passage.pageStart,
    pageEnd: passage.pageEnd,
    quote,
  };
}

/** The answer when the material does not cover the question: no citations, not grounded. */
export function notCoveredAnswer(): GroundedAnswer {
  return { content: NOT_COVERED_TEXT, citations: [], grounded: false, droppedMarkers: 0 };
}

export interface ExtractiveOptions {
  /** 1–4, default 3. */
  maxSentences?: number;
}

/**
 * The sentences of the passages that best answer the question, best first, each followed by
 * the `[n]` of its passage, after `EXTRACTIVE_LEAD`; one citation per passage used, quoting the
 * first sentence taken from it. `notCoveredAnswer()` when no sentence shares a term with the
 * question.
 */
export function extractiveAnswer(question: string, passages: readonly TutorPassage[], opts: ExtractiveOptions = {}): GroundedAnswer {
  const ranked = rankSentences(question, passages);
  const max = Math.min(4, Math.max(1, Math.floor(opts.maxSentences ?? 3)));
  const chosen = selectSentences(ranked, max);
  if (chosen.length === 0) return notCoveredAnswer();
  // The best sentence is read in its context: the sentence before it when it opens by pointing
  // back ("This is…"), the one after it when that goes on with the same matter. They come
  // first, in text order, and take the places of the lowest-ranked sentences.
  if (max > 1) {
    const top = chosen[0]!;
    const same = (a: ScoredSentence, b: ScoredSentence) => a.passage === b.passage && a.start === b.start;
    const before = neighbour(top, ranked, 'before');
    // With room for two sentences only, the one before (the antecedent) wins.
    const after = max > 2 || !before ? neighbour(top, ranked, 'after') : undefined;
    const context = [before, top, after].filter((s): s is ScoredSentence => s !== undefined);
    const rest = chosen.slice(1).filter((c) => !context.some((s) => same(c, s)));
    // The context may lengthen the answer by one sentence (four at most).
    const room = context.length > 1 ? Math.min(4, max + 1) : max;
    chosen.splice(0, chosen.length, ...context, ...rest.slice(0, Math.max(0, room - context.length)));
  }
  const citations: Citation[] = [];
  for (const s of chosen) {
    if (!citations.some((c) => c.index === s.passage.n)) citations.push(citationOf(s.passage, s.text));
  }
  const body = chosen.map((s) => `${s.text} [${s.passage.n}]`).join(' ');
  return { content: `${EXTRACTIVE_LEAD}\n\n${body}`, citations, grounded: true, droppedMarkers: 0 };
}

/**
 * The sentence next to `top` in its passage and paragraph that belongs with it: `before` it when
 * `top` opens by pointing back ("This is in contrast to…"); `after` it when that sentence goes on
 * with the same matter: it shares a term with the question (it is in `ranked`) or points back
 * itself. Where a question restates the set-up, the answer is often in the next sentence.
 */
function neighbour(top: ScoredSentence, ranked: readonly ScoredSentence[], side: 'before' | 'after'): ScoredSentence | undefined {
  const text = top.passage.text;
  const sentences = splitSentences(text);
  const i = sentences.findIndex((s) => s.start === top.start);
  if (i < 0 || (side === 'before' && !CONTINUES.test(top.text))) return undefined;
  const s = sentences[side === 'before' ? i - 1 : i + 1];
  if (!s || s.heading || isLabel(s.text)) return undefined;
  const gap = side === 'before' ? text.slice(s.end, top.start) : text.slice(top.end, s.start);
  if (/\n[ \t]*\n/u.test(gap)) return undefined;
  const scored = ranked.find((c) => c.passage === top.passage && c.start === s.start);
  if (scored) return scored;
  if (side === 'after' && !CONTINUES.test(s.text)) return undefined;
  return { passage: top.passage, text: s.text, start: s.start, end: s.end, terms: terms(s.text), relevance: 0 };
}

interface Word {
  text: string;
  start: number;
  end: number;
  terms: string[];
}

/** Words of a text; a number with thousands separators or decimals ("17,000", "3.14") is one word. */
function wordsOf(text: string): Word[] {
  return [...text.matchAll(/\p{N}+(?:[.,]\p{N}+)*\p{L}*|[\p{L}\p{M}_][\p{L}\p{N}\p{M}_]*(?:['’]\p{L}+)?/gu)].map((m) => ({
    text: m[0],
    start: m.index,
    end: m.index + m[0].length,
    terms: terms(m[0]),
  }));
}

/** compromise's part-of-speech tags for each word of `ws` (words it splits or joins differently get none). */
function tagsOf(text: string, ws: readonly Word[]): ReadonlySet<string>[] {
  const tagged = (nlp(text).json() as { terms: { text: string; tags: string[] }[] }[]).flatMap((s) => s.terms);
  const out: ReadonlySet<string>[] = ws.map(() => new Set<string>());
  let j = 0;
  ws.forEach((w, i) => {
    const lower = w.text.toLowerCase();
    for (let k = j; k < Math.min(tagged.length, j + 4); k++) {
      const t = tagged[k]!.text.toLowerCase();
      if (t === lower || t.includes(lower)) {
        out[i] = new Set(tagged[k]!.tags);
        j = t === lower ? k + 1 : k;
        return;
      }
    }
  });
  return out;
}

/** Just before the word: "called", "we call the", "known as a", "named “"… (an opening quote may follow). */
const NAMING = /\b(?:call|calls|called|name|names|named|term|terms|termed|known as|referred to as)\s+(?:(?:the|a|an)\s+)?["“‘']?$/iu;
const DEFINING = /\b(?:is|are|was|were)\s+(?:the|a|an)\s+$/iu;
const YEAR = /^(?:1[0-9]{3}|20[0-9]{2})s?$/u;
/** ", the …" after a word: an apposition that renames it. */
const APPOSITION = /^,\s+(?:the|a|an)\s/iu;
/** Lower-case particles inside a person's name ("Karl von Frisch", "Leonardo da Vinci"). */
const NAME_PARTICLES = new Set([
  'von',
  'van',
  'der',
  'den',
  'de',
  'da',
  'del',
  'della',
  'di',
  'du',
  'la',
  'le',
  'bin',
  'ibn',
  'al',
  'ten',
  'ter',
]);

/**
 * The answer term of a sentence: the word that is in the sentence but not in the question and
 * says most. A word's weight is its IDF over the passages' sentences (halved for a common
 * word), times
 *   - 0.3 unless compromise tags it a noun, name, number or date (answers are those),
 *   - 4 when it is what the question type asks for: a year for "when" (2 for another date), a
 *     person for "who" (2 for another proper noun, 1.5 more right after "by"), a number for
 *     "how many",
 *   - 2 right after "called"/"named"/"known as"/"we call the “…", 1.5 right after "is the"/"are a"…,
 *   - 1 + 0.5/d, d the distance in words to the nearest question term (the answer is usually
 *     next to what the question names), and 1.5 more in apposition to one that is a noun ("the
 *     enzyme RuBisCO", "the fuzz tester, JSFUNFUZZ,", "the city of Mainz", "Chlorophyll, the
 *     green pigment"; not "random language" after the adjective "random"), but 0.5 when
 *     hyphenated to one ("five-carbon"),
 *   - up to 1.2 towards the sentence's end (new information tends to come last).
 * A name of several words ("Maximilien Robespierre", "Karl von Frisch") is taken whole, with
 * its particles. Returns the words' indices.
 */
function answerWords(question: string, sentence: ScoredSentence, pool: readonly (readonly string[])[]): number[] {
  const qTerms = questionTerms(question);
  const type = questionType(question);
  const ws = wordsOf(sentence.text);
  const tags = tagsOf(sentence.text, ws);
  const count = Math.max(1, pool.length);
  const inQuestion = ws.map((w) => w.terms.some((t) => qTerms.some((q) => sameTerm(q, t))));
  const isName = (i: number) => {
    const t = tags[i];
    if (!t) return false;
    return t.has('Person') || t.has('ProperNoun') || (i > 0 && /^\p{Lu}/u.test(ws[i]!.text) && t.has('Noun'));
  };
  const gap = (a: number, b: number) => sentence.text.slice(ws[Math.min(a, b)]!.end, ws[Math.max(a, b)]!.start);
  const nearAfter = (i: number) => inQuestion.slice(i + 1, i + 5).some(Boolean);
  // An apposition renames a noun ("the enzyme RuBisCO"); after an adjective ("random language") the word is only modified.
  const nounLike = (i: number) => tags[i]!.has('Noun') || !tags[i]!.has('Adjective');
  let best = -1;
  let bestScore = 0;
  ws.forEach((w, i) => {
    const term = w.terms[0];
    if (!term || QUESTION_FILLER.has(term) || inQuestion[i]) return;
    const t = tags[i]!;
    const df = pool.filter((s) => s.some((x) => sameTerm(x, term))).length;
    let score = Math.log(1 + (count - df + 0.5) / (df + 0.5));
    if (COMMON_WORDS.has(term)) score *= 0.5;
    const numeric = NUMBER.test(w.text) || t.has('Value');
    if (!((t.has('Noun') && !t.has('Pronoun')) || numeric || t.has('Date'))) score *= 0.3;
    const before = sentence.text.slice(0, w.start);
    if (type === 'when' && (YEAR.test(w.text) || t.has('Year'))) score *= 4;
    else if (type === 'when' && t.has('Date')) score *= 2;
    else if (type === 'who' && t.has('Person')) score *= 4;
    else if (type === 'who' && isName(i)) score *= 2;
    else if (type === 'count' && numeric) score *= 4;
    if (type === 'who' && isName(i) && /\bby\s+$/iu.test(before)) score *= 1.5;
    if (NAMING.test(before)) score *= 2;
    else if (DEFINING.test(before)) score *= 1.5;
    let distance = Infinity;
    inQuestion.forEach((q, j) => {
      if (q) distance = Math.min(distance, Math.abs(j - i));
    });
    if (Number.isFinite(distance)) score *= 1 + 0.5 / distance;
    // Hyphenated to a question term ("five-carbon"): a modifier of what the question names.
    const hyphenated = (j: number) => inQuestion[j] === true && /^-$/u.test(gap(i, j));
    if (hyphenated(i - 1) || hyphenated(i + 1)) score *= 0.5;
    // Right after a question term, in apposition ("the enzyme RuBisCO"), or before one ("Chlorophyll, the green pigment").
    else if (
      (i > 0 && inQuestion[i - 1] && nounLike(i - 1) && (gap(i - 1, i) === ' ' || (gap(i - 1, i) === ', ' && isName(i)))) ||
      (i > 1 && inQuestion[i - 2] && nounLike(i - 2) && isName(i) && /^ of $/u.test(gap(i - 2, i)) && ws[i - 1]!.text === 'of') ||
      (APPOSITION.test(sentence.text.slice(w.end)) && nearAfter(i))
    ) {
      // "the enzyme RuBisCO", "Mozilla's fuzz tester, JSFUNFUZZ,", "the city of Mainz", "Chlorophyll, the green pigment".
      score *= 1.5;
    }
    score *= 1 + (0.2 * i) / Math.max(1, ws.length - 1);
    if (score > bestScore) {
      best = i;
      bestScore = score;
    }
  });
  if (best < 0) return [];
  const picked = [best];
  if (isName(best)) {
    const adjacent = (a: number, b: number) => /^ $/u.test(sentence.text.slice(ws[a]!.end, ws[b]!.start));
    // A name of several words, with its particles: "Karl von Frisch", "Leonardo da Vinci".
    const particle = (i: number) => NAME_PARTICLES.has(ws[i]!.text);
    const joins = (i: number) => !inQuestion[i] && (isName(i) || particle(i));
    let from = best;
    while (from > 0 && adjacent(from - 1, from) && joins(from - 1)) from--;
    let to = best;
    while (to + 1 < ws.length && adjacent(to, to + 1) && joins(to + 1)) to++;
    // Particles only count between two name words.
    while (from < best && particle(from)) from++;
    while (to > best && particle(to)) to--;
    picked.splice(0, 1);
    for (let i = from; i <= to; i++) picked.push(i);
  }
  return picked;
}

/** Replaces every word of `text` whose term is one of `hidden` (by `sameTerm`) with `BLANK`. */
function blankTerms(text: string, hidden: readonly string[]): string {
  let out = '';
  let last = 0;
  for (const w of wordsOf(text)) {
    if (!w.terms.some((t) => hidden.some((h) => sameTerm(h, t)))) continue;
    out += text.slice(last, w.start) + BLANK;
    last = w.end;
  }
  return (out + text.slice(last)).replace(new RegExp(`${BLANK}(?:\\s+${BLANK})+`, 'gu'), BLANK);
}

const QUESTION_BACK: Readonly<Record<QuestionType, string>> = {
  when: 'Which date do you think belongs in the blank, and what happened then?',
  who: 'Who do you think fills the blank, and what did they do?',
  count: 'What number do you think goes in the blank?',
  other: 'Which word do you think fills the blank, and how does it answer your question?',
};

/**
 * A SOCRATIC hint from the passages, without the answer: the best sentence with its answer term
 * blanked (every word with that term, in every part of the hint), where to reread it (page and
 * document, the title left out if it contains the term), and a question back. The citation's
 * quote is that sentence with the term blanked too, so the hint never holds the answer term nor
 * the full answer sentence. `notCoveredAnswer()` when no sentence shares a term with the question.
 */
export function socraticHint(question: string, passages: readonly TutorPassage[]): GroundedAnswer {
  const ranked = rankSentences(question, passages);
  const best = ranked[0];
  if (!best) return notCoveredAnswer();
  const pool = candidateSentences(passages).map((c) => c.terms);
  const picked = answerWords(question, best, pool);
  const ws = wordsOf(best.text);
  const hidden = picked.flatMap((i) => ws[i]!.terms);
  const passage = best.passage;
  const where = `Reread page${passage.pageEnd > passage.pageStart ? 's' : ''} ${pageLabel(passage)}`;
  const hides = (text: string) => terms(text).some((t) => hidden.some((h) => sameTerm(h, t)));
  const source = hides(passage.documentTitle) ? 'of the document cited' : `of "${passage.documentTitle}"`;
  const section = passage.heading && !hides(passage.heading) ? `, the section "${passage.heading}"` : '';
  const type = questionType(question);
  let content: string;
  let quote: string;
  if (hidden.length > 0) {
    quote = blankTerms(best.text, hidden);
    content = [
      `Let's work it out from the course material. ${where} ${source}${section} [${passage.n}]. It says:`,
      '',
      `"${quote}"`,
      '',
      QUESTION_BACK[type],
    ].join('\n');
  } else {
    // Nothing to blank (the sentence only repeats the question's words): point to it without quoting.
    quote = best.text;
    content = [
      `Let's work it out from the course material. ${where} ${source}${section} [${passage.n}].`,
      '',
      'What does that passage say that answers your question, in your own words?',
    ].join('\n');
  }
  // Last line of defence: nothing of the hint may carry the hidden term.
  if (hidden.length > 0) content = blankTerms(content, hidden);
  return { content, citations: [citationOf(passage, quote)], grounded: true, droppedMarkers: 0 };
}

export interface OfflineTurn {
  question: string;
  passages: readonly TutorPassage[];
  mode: TutorMode;
  /** The conversation before the question, oldest first; used to make a follow-up standalone. */
  history?: readonly HistoryTurn[];
  coverage?: CoverageOptions;
  extractive?: ExtractiveOptions;
}

/**
 * One offline turn: the question made standalone, coverage checked, then an extractive answer
 * (EXPLAIN) or a hint (SOCRATIC), or `notCoveredAnswer()`. Retrieval should already have used
 * `standaloneQuestion(question, history)`, which is what is returned as `question`.
 */
export function answerOffline(turn: OfflineTurn): { question: string; coverage: CoverageResult; answer: GroundedAnswer } {
  const question = standaloneQuestion(turn.question, turn.history ?? []);
  const cov = coverage(question, turn.passages, turn.coverage);
  if (!cov.covered) return { question, coverage: cov, answer: notCoveredAnswer() };
  const answer =
    turn.mode === 'SOCRATIC' ? socraticHint(question, turn.passages) : extractiveAnswer(question, turn.passages, turn.extractive);
  return { question, coverage: cov, answer };
}
