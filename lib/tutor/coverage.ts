/**
 * Does the retrieved material cover the question?
 *
 * Retrieval always returns its best passages, relevant or not, and their BM25/RRF scores are
 * not comparable from one question to the next, so they cannot say "nothing relevant". This
 * rule measures instead how much of what the question is about appears in one passage:
 *
 *   Q      = the question's content terms (`questionTerms`: stemmed, stop words and filler
 *            words such as "explain", "mean", "happen" removed), distinct;
 *   w(t)   = `rarity(t)`: 0.5 for very common English words ("world", "make", "use"…),
 *            1.5 for names and numbers the student wrote ("Einstein", "2018"), 1 otherwise;
 *   P      = the terms of a passage (its text with words hyphenated across lines joined, its
 *            section heading and its document title);
 *   share  = Σ w(t) over t ∈ Q found in P (same stem, or one stem of ≥ 5 letters beginning
 *            the other) ÷ Σ w(t) over Q;
 *   score  = the best share over the passages given;
 *   covered ⇔ score ≥ COVERAGE_THRESHOLD, and that passage holds at least two distinct terms
 *            of the question (or its only term, for a one-term question such as "what is
 *            inertia?").
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
 * one shared word is a coincidence, two in the same passage rarely are. A question with no content terms at all ("why?") is not covered: it
 * must be made standalone first (followup.ts).
 *
 * The threshold was set on the fixture course in testdata/course.ts (10 passages on three
 * topics, 15 paraphrased on-topic and 10 off-topic questions, several sharing words with the
 * course); coverage.test.ts asserts the rates and reports the scores it measured there.
 */
import { splitStandalone } from './followup.js';
import { joinHyphenated } from './sentences.js';
import type { TutorPassage } from './types.js';
import { hasTerm, questionTerms, rarity, specificTerms, uniqueTerms } from './terms.js';

/** Minimum weighted share of the question's terms that one passage must contain. */
export const COVERAGE_THRESHOLD = 0.55;

export interface CoverageResult {
  covered: boolean;
  /** The best passage's weighted share of the question's terms, 0..1 (0 with no terms or no passages). */
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

/** The terms of a passage as coverage sees them: text, heading and document title. */
export function passageTerms(passage: TutorPassage): Set<string> {
  return new Set(uniqueTerms(`${passage.documentTitle}\n${passage.heading ?? ''}\n${joinHyphenated(passage.text)}`));
}

/** How well the passages cover the question; see the rule at the top of this file. */
export function coverage(question: string, passages: readonly TutorPassage[], opts: CoverageOptions = {}): CoverageResult {
  const threshold = opts.threshold ?? COVERAGE_THRESHOLD;
  const own = splitStandalone(question).question;
  const scored = questionTerms(own).length > 0 ? own : question;
  const specific = specificTerms(scored);
  const terms = questionTerms(scored).map((term) => ({ term, weight: rarity(term, specific) }));
  const total = terms.reduce((s, t) => s + t.weight, 0);
  const result: CoverageResult = { covered: false, score: 0, terms, matched: [], threshold };
  if (total === 0) return result;
  let best = -1;
  for (const passage of passages) {
    const inPassage = passageTerms(passage);
    const matched = terms.filter((t) => hasTerm(inPassage, t.term));
    const share = matched.reduce((s, t) => s + t.weight, 0) / total;
    if (share > best) {
      best = share;
      result.score = share;
      result.bestPassage = passage.n;
      result.matched = matched.map((t) => t.term);
    }
  }
  result.covered = result.bestPassage !== undefined && result.score >= threshold && result.matched.length >= Math.min(2, terms.length);
  return result;
}
