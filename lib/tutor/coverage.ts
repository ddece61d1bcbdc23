/**
 * Does the retrieved material cover the question?
 *
 * Retrieval always returns its best passages, relevant or not, and their BM25/RRF scores are
 * not comparable from one question to the next, so they cannot say "nothing relevant". This
 * rule measures instead how much of what the question is about appears in one passage:
 *
 *   Q      = the question's content terms (`questionTerms`: stemmed, stop words and filler
 *            words such as "explain", "mean", "happen" removed), distinct;
 *   P      = the terms of a passage (its text with words hyphenated across lines joined, its
 *            section heading and its document title);
 *   found  = the terms of Q in P: same stem, one stem of ≥ 5 letters beginning the other, or
 *            everyday synonyms ("contain"/"consist", `SYNONYM_GROUPS` in terms.ts);
 *   w(t)   = a found term's weight, `rarity(t)`: 1.5 for names and numbers the student wrote
 *            ("Einstein", "2018"), 0.5 for very common English words ("world", "make",
 *            "use"…), 1 otherwise;
 *   m(t)   = a missing term's weight: 2 for a name or number (`MISSING_SPECIFIC_WEIGHT`: the
 *            question is about something the passage does not name), 0.25 for a very common
 *            word (`MISSING_COMMON_WEIGHT`: paraphrases swap such words, "which part of the
 *            body" for "the underside of the abdomen"), 1 otherwise;
 *   share  = Σ w(t) over found ÷ (Σ w(t) over found + Σ m(t) over missing);
 *   covered ⇔ for one passage: share ≥ COVERAGE_THRESHOLD (0.5), it holds at least two
 *            distinct terms of the question (or its only term, for a one-term question such as
 *            "what is inertia?"), and, when a name or number the student wrote is among them,
 *            that name and another of the terms lie within `WINDOW_SENTENCES` (2) consecutive
 *            sentences (the heading and document title count as part of every window);
 *   score  = that passage's share (else the best share over the passages given).
 *
 * A follow-up made standalone offline ("what about Robespierre? (about: stormed Bastille)",
 * followup.ts) is scored on its own words when it has any: the carried words steer retrieval,
 * but whether the material answers the follow-up depends on what the follow-up asks. With no
 * words of its own ("why is it important?") it is scored on the carried words.
 *
 * So a question is covered when a single passage mentions most of its weighted subject
 * terms, together. A paraphrase keeps its subject words (or derived forms of them) and passes;
 * an off-topic question that shares a word with the course ("who won the 2018 world cup"
 * against passages that mention "the world", "what is the French word for apple?" against a
 * history of France) leaves its specific terms ("2018", "cup", "apple") unmatched and fails:
 * one shared word is a coincidence, two in the same passage rarely are. Passages are often a
 * page long, though, and a question that names something of the course and asks what the
 * course does not say ("what is the population of Mainz today?" against a page that mentions
 * Mainz once and "survive today" three sentences later) matches two words far apart: the
 * window rule turns it down. A question with no content terms at all ("why?") is not covered:
 * it must be made standalone first (followup.ts).
 *
 * The weights and the threshold were set on the fixture course in testdata/course.ts (10
 * passages on three topics, 15 paraphrased on-topic and 10 off-topic questions, several sharing
 * words with the course; coverage.test.ts asserts the rates) and on the tuning half of
 * `npm run eval:tutor` (docs/testing.md), whose held-out halves measure them.
 */
import { splitStandalone } from './followup.js';
import { joinHyphenated, splitSentences } from './sentences.js';
import type { TutorPassage } from './types.js';
import { COMMON_WORDS, hasTerm, questionTerms, rarity, specificTerms, uniqueTerms } from './terms.js';

/** Minimum weighted share of the question's terms that one passage must contain. */
export const COVERAGE_THRESHOLD = 0.5;
/** Weight of a very common word of the question that the passage lacks (paraphrases swap such words). */
export const MISSING_COMMON_WEIGHT = 0.25;
/** Weight of a name or number the student wrote that the passage lacks (the question is about something else). */
export const MISSING_SPECIFIC_WEIGHT = 2;

export interface CoverageResult {
  covered: boolean;
  /**
   * The best passage's weighted share of the question's terms, 0..1 (0 with no terms or no
   * passages); a passage that meets the window rule comes before one that does not.
   */
  score: number;
  /** `n` of the passage that scored best (the first on ties); absent with no terms or no passages. */
  bestPassage?: number;
  /** The question's content terms (stems), with their weights. */
  terms: { term: string; weight: number }[];
  /** The question's terms found in the best passage. */
  matched: string[];
  /** The threshold applied. */
  threshold: number;
}

export interface CoverageOptions {
  /** Default `COVERAGE_THRESHOLD`. */
  threshold?: number;
}

/** Passages whose terms are remembered (the same chunks come back question after question). */
const PASSAGE_TERMS_MAX = 2000;
const passageTermsMemo = new Map<string, ReadonlySet<string>>();

/**
 * The terms of a passage as coverage sees them: text, heading and document title. Stemming a
 * page costs a few milliseconds; the sets of the passages seen last are kept, by their text.
 */
export function passageTerms(passage: TutorPassage): ReadonlySet<string> {
  const source = `${passage.documentTitle}\n${passage.heading ?? ''}\n${passage.text}`;
  let terms = passageTermsMemo.get(source);
  if (terms)
    passageTermsMemo.delete(source); // most recently used last
  else {
    terms = new Set(uniqueTerms(`${passage.documentTitle}\n${passage.heading ?? ''}\n${joinHyphenated(passage.text)}`));
    if (passageTermsMemo.size >= PASSAGE_TERMS_MAX) passageTermsMemo.delete(passageTermsMemo.keys().next().value!);
  }
  passageTermsMemo.set(source, terms);
  return terms;
}

/** Sentences of the window in which a matched name must meet another term of the question (see `closeTogether`). */
export const WINDOW_SENTENCES = 2;

/**
 * Whether `need` of the `matched` terms, one of them in `anchors`, occur within
 * `WINDOW_SENTENCES` consecutive sentences of the passage (its heading and document title count
 * as part of every window).
 */
function closeTogether(passage: TutorPassage, matched: readonly string[], anchors: readonly string[], need: number): boolean {
  const context = new Set(uniqueTerms(`${passage.documentTitle}\n${passage.heading ?? ''}`));
  const sentences = splitSentences(joinHyphenated(passage.text)).map((s) => uniqueTerms(s.text));
  for (let i = 0; i < Math.max(1, sentences.length - WINDOW_SENTENCES + 1); i++) {
    const window = new Set([...context, ...sentences.slice(i, i + WINDOW_SENTENCES).flat()]);
    const found = matched.filter((t) => hasTerm(window, t));
    if (found.length >= need && found.some((t) => anchors.includes(t))) return true;
  }
  return false;
}

/** How well the passages cover the question; see the rule at the top of this file. */
export function coverage(question: string, passages: readonly TutorPassage[], opts: CoverageOptions = {}): CoverageResult {
  const threshold = opts.threshold ?? COVERAGE_THRESHOLD;
  const own = splitStandalone(question).question;
  const scored = questionTerms(own).length > 0 ? own : question;
  const specific = specificTerms(scored);
  const terms = questionTerms(scored).map((term) => ({ term, weight: rarity(term, specific) }));
  const result: CoverageResult = { covered: false, score: 0, terms, matched: [], threshold };
  if (terms.length === 0) return result;
  const missingWeight = (t: { term: string; weight: number }) =>
    specific.has(t.term) ? MISSING_SPECIFIC_WEIGHT : COMMON_WORDS.has(t.term) ? MISSING_COMMON_WEIGHT : t.weight;
  const need = Math.min(2, terms.length);
  let best: { share: number; together: boolean } | undefined;
  for (const passage of passages) {
    const inPassage = passageTerms(passage);
    const matched = terms.filter((t) => hasTerm(inPassage, t.term));
    const found = matched.reduce((s, t) => s + t.weight, 0);
    const missing = terms.filter((t) => !matched.includes(t)).reduce((s, t) => s + missingWeight(t), 0);
    const share = found / (found + missing);
    // A name or number the student wrote anchors the match: the question's other words must be near it.
    const anchors = matched.filter((t) => specific.has(t.term)).map((t) => t.term);
    const together =
      matched.length >= need &&
      (anchors.length === 0 ||
        closeTogether(
          passage,
          matched.map((t) => t.term),
          anchors,
          need,
        ));
    if (!best || (together && !best.together) || (together === best.together && share > best.share)) {
      best = { share, together };
      result.score = share;
      result.bestPassage = passage.n;
      result.matched = matched.map((t) => t.term);
    }
  }
  result.covered = best !== undefined && best.together && result.score >= threshold;
  return result;
}
