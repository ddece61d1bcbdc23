/**
 * Validation of exam questions, offline-made or model-made, before they are kept.
 *
 * Per question (`validateQuestion`):
 *   - malformed: the fields its type needs (MC: options + integer answerIndex;
 *     TF: boolean answerBool; FIB: answerText and one `_____` in the stem; SA:
 *     answerText and at least one key term), a stem, an explanation, a source.
 *   - source: the cited passage exists (chunkId), its documentId, title and
 *     pages match, `page` lies within them (and is the sentence's page when the
 *     passage has page breaks), and the sentence is in the passage's text
 *     (verbatim, whitespace runs aside); a page claimed exact must be knowable.
 *   - unsupported: the key is in the cited sentence, normalised (stems of
 *     lexical.ts, thousands separators removed): MC the key option, FIB the
 *     answer, SA every key term and ≥ 60 % of the reference answer's terms; TF
 *     true: ≥ 80 % of the statement's terms are in the sentence and ≥ 60 % of
 *     the sentence's terms in the statement; TF false: the statement is about
 *     the sentence (≥ 50 % of its terms shared) but differs from it (a term or
 *     a number of the statement is not in the sentence).
 *   - options: MC has exactly 4 non-empty options, distinct after case and
 *     whitespace folding.
 *   - key: answerIndex is an integer within the options, and exactly one
 *     option is correct: no distractor occurs in the cited sentence.
 *   - answer-in-stem: the key (MC option, FIB answer, any SA key term) is not in
 *     the stem, normalised as above.
 *   - distractor-kind: MC options are of the key's kind: all years for a year,
 *     all numbers for a number, no bare number for a word key.
 *
 * Per exam (`validateExam`):
 *   - near-duplicate: two stems (template words removed) with a Jaccard index of
 *     their stemmed terms ≥ 0.6, or the same type from the same source sentence.
 *   - key-balance: with n MC questions, no position holds more than
 *     floor(0.4 n) keys when n ≥ 8, more than ceil(n / 4) + 1 otherwise.
 *   - tf-balance: with n ≥ 4 TF questions, |true − false| ≤ max(1, floor(0.2 n)).
 */
import {
  BLANK,
  collapse,
  containsTerm,
  exactPages,
  fold,
  isYearText,
  jaccard,
  locateSentence,
  pageAt,
  parseNumber,
  stemContent,
  termSet,
  terms,
  tfStatement,
} from './text.js';
import { QUESTION_TYPES, type ExamPassage, type ExamQuestionDraft, type ValidationIssue, type ValidationRule } from './types.js';

export const NEAR_DUPLICATE_JACCARD = 0.6;

const issue = (rule: ValidationRule, message: string, questions?: number[]): ValidationIssue =>
  questions ? { rule, message, questions } : { rule, message };

const nonEmpty = (s: unknown): s is string => typeof s === 'string' && s.trim().length > 0;

function coverage(part: ReadonlySet<string>, whole: ReadonlySet<string>): number {
  if (!part.size) return 0;
  let n = 0;
  for (const t of part) if (whole.has(t)) n++;
  return n / part.size;
}

function numbersIn(text: string): number[] {
  return [...text.matchAll(/\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?/g)].map((m) => Number(m[0].replace(/,/g, '')));
}

function checkSource(q: ExamQuestionDraft, passages: readonly ExamPassage[]): ValidationIssue[] {
  const s = q.source;
  if (!s || !nonEmpty(s.sentence) || !nonEmpty(s.chunkId)) return [issue('malformed', 'the source is missing its chunkId or sentence')];
  const passage = passages.find((p) => p.chunkId === s.chunkId);
  if (!passage) return [issue('source', `no passage ${s.chunkId}`)];
  const out: ValidationIssue[] = [];
  if (passage.documentId !== s.documentId)
    out.push(issue('source', `documentId ${s.documentId} is not the passage's ${passage.documentId}`));
  if (passage.documentTitle !== s.documentTitle) out.push(issue('source', `the document title differs from the passage's`));
  if (passage.pageStart !== s.pageStart || passage.pageEnd !== s.pageEnd)
    out.push(issue('source', `pages ${s.pageStart}-${s.pageEnd} are not the passage's ${passage.pageStart}-${passage.pageEnd}`));
  const at = locateSentence(passage.text, s.sentence);
  if (!at) out.push(issue('source', `the sentence is not in passage ${s.chunkId}`));
  if (!Number.isInteger(s.page) || s.page < passage.pageStart || s.page > passage.pageEnd)
    out.push(issue('source', `page ${s.page} is outside the passage's pages ${passage.pageStart}-${passage.pageEnd}`));
  else if (at && passage.pageBreaks?.length && pageAt(passage, at.start) !== s.page)
    out.push(issue('source', `the sentence is on page ${pageAt(passage, at.start)}, not ${s.page}`));
  else if (s.pageExact === true && !exactPages(passage))
    out.push(issue('source', `page ${s.page} is claimed exact but passage ${s.chunkId} spans pages without page breaks`));
  return out;
}

function checkMultipleChoice(q: ExamQuestionDraft, sentence: string): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  const options = q.options;
  if (!Array.isArray(options) || !options.every((o) => typeof o === 'string'))
    return [issue('malformed', 'a multiple-choice question needs options')];
  if (!Number.isInteger(q.answerIndex) || q.answerIndex! < 0 || q.answerIndex! >= options.length)
    return [issue('key', `answerIndex ${String(q.answerIndex)} is not an option index`)];
  const folded = options.map(fold);
  if (options.length !== 4) out.push(issue('options', `${options.length} options instead of 4`));
  if (folded.some((o) => !o)) out.push(issue('options', 'an option is empty'));
  if (new Set(folded).size !== folded.length) out.push(issue('options', 'two options are the same (ignoring case and whitespace)'));
  const key = options[q.answerIndex!]!;
  if (!containsTerm(sentence, key)) out.push(issue('unsupported', `the key "${key}" is not in the cited sentence`));
  if (containsTerm(q.stem, key)) out.push(issue('answer-in-stem', `the stem contains the key "${key}"`));
  options.forEach((o, i) => {
    if (i !== q.answerIndex && containsTerm(sentence, o)) out.push(issue('key', `the distractor "${o}" also occurs in the cited sentence`));
  });
  const keyNumber = parseNumber(key);
  if (keyNumber !== null) {
    const year = isYearText(key);
    for (const o of options) {
      if (parseNumber(o) === null) out.push(issue('distractor-kind', `"${o}" is not a number like the key "${key}"`));
      else if (year && !isYearText(o)) out.push(issue('distractor-kind', `"${o}" is not a year like the key "${key}"`));
    }
  } else {
    for (const o of options)
      if (parseNumber(o) !== null) out.push(issue('distractor-kind', `"${o}" is a number but the key "${key}" is not`));
  }
  return out;
}

function checkTrueFalse(q: ExamQuestionDraft, sentence: string): ValidationIssue[] {
  if (typeof q.answerBool !== 'boolean') return [issue('malformed', 'a true/false question needs answerBool')];
  const statement = tfStatement(q.stem);
  const st = termSet(statement);
  const se = termSet(sentence);
  if (!st.size) return [issue('malformed', 'the statement is empty')];
  if (q.answerBool) {
    if (coverage(st, se) < 0.8 || coverage(se, st) < 0.6)
      return [issue('unsupported', 'the true statement is not what the cited sentence says')];
    const extra = numbersIn(statement).filter((n) => !numbersIn(sentence).includes(n));
    if (extra.length) return [issue('unsupported', `the true statement has numbers (${extra.join(', ')}) the sentence does not`)];
    return [];
  }
  if (fold(statement) === fold(sentence)) return [issue('unsupported', 'the false statement is the cited sentence itself')];
  if (coverage(st, se) < 0.5) return [issue('unsupported', 'the false statement is not about the cited sentence')];
  const newTerm = [...st].some((t) => !se.has(t));
  const newNumber = numbersIn(statement).some((n) => !numbersIn(sentence).includes(n));
  if (!newTerm && !newNumber) return [issue('unsupported', 'the false statement changes nothing the sentence contradicts')];
  return [];
}

function checkFillIn(q: ExamQuestionDraft, sentence: string): ValidationIssue[] {
  if (!nonEmpty(q.answerText)) return [issue('malformed', 'a fill-in-the-blank question needs answerText')];
  const blanks = q.stem.split(BLANK).length - 1;
  if (blanks !== 1) return [issue('malformed', `the stem has ${blanks} blanks instead of 1`)];
  const out: ValidationIssue[] = [];
  if (!containsTerm(sentence, q.answerText)) out.push(issue('unsupported', `the answer "${q.answerText}" is not in the cited sentence`));
  if (containsTerm(q.stem, q.answerText)) out.push(issue('answer-in-stem', `the stem contains the answer "${q.answerText}"`));
  return out;
}

function checkShortAnswer(q: ExamQuestionDraft, sentence: string): ValidationIssue[] {
  if (!nonEmpty(q.answerText)) return [issue('malformed', 'a short-answer question needs a reference answer')];
  if (!Array.isArray(q.keyTerms) || !q.keyTerms.length || !q.keyTerms.every(nonEmpty))
    return [issue('malformed', 'a short-answer question needs key terms')];
  const out: ValidationIssue[] = [];
  for (const t of q.keyTerms) {
    if (!containsTerm(sentence, t)) out.push(issue('unsupported', `the key term "${t}" is not in the cited sentence`));
    if (containsTerm(q.stem, t)) out.push(issue('answer-in-stem', `the stem contains the key term "${t}"`));
  }
  if (coverage(termSet(q.answerText), termSet(sentence)) < 0.6)
    out.push(issue('unsupported', 'the reference answer is not supported by the cited sentence'));
  return out;
}

/** The issues of one question against the passages it may cite; empty when it can be kept. */
export function validateQuestion(q: ExamQuestionDraft, passages: readonly ExamPassage[]): ValidationIssue[] {
  if (!q || typeof q !== 'object') return [issue('malformed', 'not a question')];
  if (!(QUESTION_TYPES as readonly string[]).includes(q.type)) return [issue('malformed', `unknown type ${String(q.type)}`)];
  if (!nonEmpty(q.stem)) return [issue('malformed', 'the stem is empty')];
  if (!nonEmpty(q.explanation)) return [issue('malformed', 'the explanation is empty')];
  const source = checkSource(q, passages);
  if (source.some((i) => i.rule === 'malformed')) return source;
  const sentence = q.source.sentence;
  const byType =
    q.type === 'MULTIPLE_CHOICE'
      ? checkMultipleChoice(q, sentence)
      : q.type === 'TRUE_FALSE'
        ? checkTrueFalse(q, sentence)
        : q.type === 'FILL_IN_THE_BLANK'
          ? checkFillIn(q, sentence)
          : checkShortAnswer(q, sentence);
  return [...source, ...byType];
}

/** The terms a stem is compared on for near-duplicates. */
export function stemTerms(stem: string): Set<string> {
  return new Set(terms(stemContent(stem)));
}

/** Whether two questions are near-duplicates (see the rules above). */
export function nearDuplicate(a: ExamQuestionDraft, b: ExamQuestionDraft): boolean {
  if (a.type === b.type && collapse(a.source.sentence).toLowerCase() === collapse(b.source.sentence).toLowerCase()) return true;
  return jaccard(stemTerms(a.stem), stemTerms(b.stem)) >= NEAR_DUPLICATE_JACCARD;
}

/** The largest number of MC keys one position may hold among n MC questions. */
export function maxKeysPerPosition(n: number): number {
  return n >= 8 ? Math.floor(0.4 * n) : Math.ceil(n / 4) + 1;
}

/** Exam-level issues: near-duplicates, key positions, true/false balance. */
export function validateExam(questions: readonly ExamQuestionDraft[]): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  const termsOf = questions.map((q) => stemTerms(q.stem));
  for (let i = 0; i < questions.length; i++) {
    for (let j = i + 1; j < questions.length; j++) {
      const a = questions[i]!;
      const b = questions[j]!;
      const sameSource = a.type === b.type && fold(a.source.sentence) === fold(b.source.sentence);
      const sim = jaccard(termsOf[i]!, termsOf[j]!);
      if (sameSource || sim >= NEAR_DUPLICATE_JACCARD)
        out.push(
          issue(
            'near-duplicate',
            sameSource
              ? `questions ${i} and ${j} are of one type from one sentence`
              : `questions ${i} and ${j} have stems ${Math.round(sim * 100)} % alike`,
            [i, j],
          ),
        );
    }
  }
  const mc = questions.map((q, i) => [q, i] as const).filter(([q]) => q.type === 'MULTIPLE_CHOICE' && Number.isInteger(q.answerIndex));
  if (mc.length) {
    const counts = [0, 0, 0, 0];
    for (const [q] of mc) if (q.answerIndex! >= 0 && q.answerIndex! < 4) counts[q.answerIndex!]!++;
    const max = Math.max(...counts);
    const allowed = maxKeysPerPosition(mc.length);
    if (max > allowed)
      out.push(
        issue(
          'key-balance',
          `keys by position ${counts.join('/')}: one position holds ${max} of ${mc.length} (at most ${allowed})`,
          mc.map(([, i]) => i),
        ),
      );
  }
  const tf = questions.map((q, i) => [q, i] as const).filter(([q]) => q.type === 'TRUE_FALSE' && typeof q.answerBool === 'boolean');
  if (tf.length >= 4) {
    const t = tf.filter(([q]) => q.answerBool).length;
    const f = tf.length - t;
    if (Math.abs(t - f) > Math.max(1, Math.floor(0.2 * tf.length)))
      out.push(
        issue(
          'tf-balance',
          `${t} true and ${f} false statements`,
          tf.map(([, i]) => i),
        ),
      );
  }
  return out;
}
