/**
 * Grading of one answer to one question, offline and pure.
 *
 * - MULTIPLE_CHOICE: the option index (or the option's letter A–D, or its text).
 * - TRUE_FALSE: a boolean (or "true"/"false", "t"/"f", "yes"/"no").
 * - FILL_IN_THE_BLANK: the text, normalised — case, whitespace, punctuation,
 *   articles and stop words, Snowball stems ("cells" = "cell"), thousands
 *   separators ("1,000" = "1000"), numbers by value ("9.80" = "9.8",
 *   "150 million" = "150000000"); a word of 6+ letters may have one typo (two
 *   from 10 letters; never in a number). The reference and its accepted forms
 *   (e.g. a surname) are tried.
 * - SHORT_ANSWER: partial credit 0..1 = 0.7 × the share of key terms present
 *   (each key term's words all found, stems or small typos) + 0.3 × the share
 *   of the reference answer's terms (those not in the question) found in the
 *   answer; halved when the answer negates and the reference does not (or the
 *   other way round). Correct from 0.6. Without key terms, the overlap alone.
 */
import { stem } from 'porter2';
import { ENGLISH_STOP_WORDS } from '../search/lexical.js';
import { editDistance, parseNumber, plainWords } from './text.js';
import type { ExamAnswer, ExamQuestionDraft, GradeResult } from './types.js';

export const SHORT_ANSWER_PASS = 0.6;
const KEY_TERM_WEIGHT = 0.7;
const NEGATIONS = new Set(['not', 'no', 'never', 'cannot', 'nor', 'neither', 'none', 'nothing', 'without']);

/** Content words: lower-cased, no stop words (negations kept out too), thousands separators removed. */
function contentWords(text: string): string[] {
  return plainWords(text).filter((w) => !ENGLISH_STOP_WORDS.has(w) && w !== '_');
}

function wordsMatch(a: string, b: string): boolean {
  if (a === b) return true;
  if (/\d/.test(a) || /\d/.test(b)) return false;
  if (stem(a) === stem(b)) return true;
  const shortest = Math.min(a.length, b.length);
  if (shortest < 6) return false;
  const allowed = shortest >= 10 ? 2 : 1;
  return editDistance(a, b, allowed) <= allowed || editDistance(stem(a), stem(b), allowed) <= allowed;
}

/** The first number written in a text ("about 9.8 m/s" → 9.8, "150 million" → 1.5e8), or null. */
function firstNumber(text: string): number | null {
  const m = /[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:\s+(?:thousand|million|billion|trillion))?/gi;
  for (const hit of text.matchAll(m)) {
    if (!/\d/.test(hit[0])) continue;
    const v = parseNumber(hit[0]);
    if (v !== null) return v;
  }
  return null;
}

function sameNumber(a: number, b: number): boolean {
  return a === b || Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));
}

/** Whether a free-text answer matches a reference term (see the rules above). */
export function matchesText(answer: string, reference: string): boolean {
  const refNumber = parseNumber(reference);
  if (refNumber !== null) {
    const got = firstNumber(answer);
    return got !== null && sameNumber(got, refNumber);
  }
  let want = contentWords(reference);
  let got = contentWords(answer);
  if (!want.length) {
    want = plainWords(reference);
    got = plainWords(answer);
  }
  if (!want.length || want.length !== got.length) return false;
  return want.every((w, i) => wordsMatch(w, got[i]!));
}

/** Whether every word of a key term is somewhere in the answer's words. */
function mentions(answerWords: readonly string[], term: string): boolean {
  const refNumber = parseNumber(term);
  if (refNumber !== null) return answerWords.some((w) => parseNumber(w) !== null && sameNumber(parseNumber(w)!, refNumber));
  const want = contentWords(term);
  const words = want.length ? want : plainWords(term);
  return words.length > 0 && words.every((w) => answerWords.some((a) => wordsMatch(w, a)));
}

function chosenIndex(q: ExamQuestionDraft, answer: ExamAnswer): number | null {
  if (typeof answer === 'number') return Number.isInteger(answer) ? answer : null;
  if (typeof answer !== 'string') return null;
  const a = answer.trim();
  if (/^[A-Da-d]$/.test(a)) return a.toUpperCase().charCodeAt(0) - 65;
  const i = (q.options ?? []).findIndex((o) => matchesText(a, o) && matchesText(o, a));
  return i >= 0 ? i : null;
}

function chosenBool(answer: ExamAnswer): boolean | null {
  if (typeof answer === 'boolean') return answer;
  if (typeof answer !== 'string') return null;
  const a = answer.trim().toLowerCase();
  if (['true', 't', 'yes', 'y'].includes(a)) return true;
  if (['false', 'f', 'no', 'n'].includes(a)) return false;
  return null;
}

const letter = (i: number) => String.fromCharCode(65 + i);

/** Grades one answer. Never throws on a malformed answer: it scores 0 with a feedback saying why. */
export function gradeAnswer(q: ExamQuestionDraft, answer: ExamAnswer): GradeResult {
  const after = q.explanation ? ` ${q.explanation}` : '';
  switch (q.type) {
    case 'MULTIPLE_CHOICE': {
      const key = q.answerIndex ?? -1;
      const keyText = `${letter(key)}) ${q.options?.[key] ?? ''}`;
      const i = chosenIndex(q, answer);
      if (i === null || i < 0 || i >= (q.options?.length ?? 0))
        return { correct: false, score: 0, feedback: `No option chosen. The answer is ${keyText}.${after}` };
      const correct = i === key;
      return { correct, score: correct ? 1 : 0, feedback: correct ? `Correct.${after}` : `Incorrect: the answer is ${keyText}.${after}` };
    }
    case 'TRUE_FALSE': {
      const b = chosenBool(answer);
      const truth = q.answerBool === true;
      if (b === null) return { correct: false, score: 0, feedback: `No answer. The statement is ${truth ? 'true' : 'false'}.${after}` };
      const correct = b === truth;
      return {
        correct,
        score: correct ? 1 : 0,
        feedback: correct ? `Correct.${after}` : `Incorrect: the statement is ${truth ? 'true' : 'false'}.${after}`,
      };
    }
    case 'FILL_IN_THE_BLANK': {
      const text = typeof answer === 'string' ? answer : typeof answer === 'number' ? String(answer) : '';
      const reference = q.answerText ?? '';
      if (!text.trim()) return { correct: false, score: 0, feedback: `No answer. The answer is \u201c${reference}\u201d.${after}` };
      const correct = [reference, ...(q.acceptedAnswers ?? [])].some((r) => r && matchesText(text, r));
      return {
        correct,
        score: correct ? 1 : 0,
        feedback: correct ? `Correct.${after}` : `Incorrect: the answer is \u201c${reference}\u201d.${after}`,
      };
    }
    case 'SHORT_ANSWER': {
      const text = typeof answer === 'string' ? answer : '';
      const keyTerms = q.keyTerms ?? [];
      if (!text.trim())
        return { correct: false, score: 0, feedback: `No answer.${after}`, matchedKeyTerms: [], missingKeyTerms: [...keyTerms] };
      const words = plainWords(text);
      const matched = keyTerms.filter((t) => mentions(words, t));
      const missing = keyTerms.filter((t) => !matched.includes(t));
      const asked = new Set(contentWords(q.stem).map((w) => stem(w)));
      const refStems = [...new Set(contentWords(q.answerText ?? '').map((w) => stem(w)))].filter((w) => !asked.has(w));
      const ansWords = contentWords(text);
      const found = refStems.filter((r) => ansWords.some((a) => stem(a) === r || wordsMatch(a, r))).length;
      const overlap = refStems.length ? found / refStems.length : 0;
      let score = keyTerms.length ? KEY_TERM_WEIGHT * (matched.length / keyTerms.length) + (1 - KEY_TERM_WEIGHT) * overlap : overlap;
      const negates = (s: string) => plainWords(s).some((w) => NEGATIONS.has(w));
      const flipped = negates(text) !== negates(q.answerText ?? '');
      if (flipped) score /= 2;
      score = Math.round(Math.min(1, Math.max(0, score)) * 100) / 100;
      const correct = score >= SHORT_ANSWER_PASS;
      const parts = [
        keyTerms.length
          ? `Key terms: ${matched.length} of ${keyTerms.length}${missing.length ? ` (missing: ${missing.join(', ')})` : ''}.`
          : '',
        `Overlap with the reference answer: ${Math.round(overlap * 100)} %.`,
        flipped ? 'The answer negates what the reference says (or the other way round).' : '',
        `Reference: \u201c${q.answerText ?? ''}\u201d`,
      ].filter(Boolean);
      return {
        correct,
        score,
        feedback: `${correct ? 'Correct' : 'Not enough'} (${Math.round(score * 100)} %). ${parts.join(' ')}`,
        matchedKeyTerms: matched,
        missingKeyTerms: missing,
      };
    }
    default:
      return { correct: false, score: 0, feedback: `Unknown question type ${String((q as { type?: unknown }).type)}.` };
  }
}
