/**
 * Moodle GIFT export. Each question is a `::name::` line, its `[plain]` text and
 * its answer block; a comment line before it carries the type, the key and the
 * source (document, page, chunk, sentence) so a reader can check it from the
 * file alone (Moodle ignores `//` lines).
 *
 * Escaping, as Moodle's qformat_gift `repchar` does (and its importer undoes):
 * `\` → `\\`, and `~ = # { } :` get a backslash; a newline becomes `\n`, CR
 * is dropped. Short-answer answers also escape `*` (Moodle's wildcard) as `\*`.
 *
 * - MULTIPLE_CHOICE: `{ =key ~wrong ~wrong ~wrong ####feedback }`, options in order.
 * - TRUE_FALSE: `{TRUE####feedback}` / `{FALSE####feedback}`.
 * - SHORT_ANSWER: `{ =reference ####feedback }` (key terms in the feedback).
 * - FILL_IN_THE_BLANK: a short answer whose text shows the blank as `_____`:
 *   `{ =answer =accepted form… ####feedback }`.
 * General feedback (`####`) is the explanation (with its source) — shown after grading.
 */
import { citation } from './offline.js';
import { pageLabel } from './text.js';
import type { Exam, ExamQuestionDraft } from './types.js';

/** GIFT escaping of free text (names, stems, answers, feedback). */
export function escapeGift(text: string): string {
  return text
    .replace(/\\/g, '\\\\')
    .replace(/[~=#{}:]/g, (c) => `\\${c}`)
    .replace(/\r\n?|\n/g, '\\n');
}

const shortAnswer = (text: string) => escapeGift(text).replace(/\*/g, '\\*');
const comment = (text: string) => `// ${text.replace(/[\r\n]+/g, ' ')}`;
const letter = (i: number) => String.fromCharCode(65 + i);

export function questionName(q: ExamQuestionDraft, i: number): string {
  return `Q${String(i + 1).padStart(2, '0')} ${q.type} (${citation(q.source)})`;
}

function keyComment(q: ExamQuestionDraft): string {
  switch (q.type) {
    case 'MULTIPLE_CHOICE':
      return `key ${letter(q.answerIndex ?? 0)}: ${q.options?.[q.answerIndex ?? 0] ?? ''}`;
    case 'TRUE_FALSE':
      return `key: ${q.answerBool ? 'TRUE' : 'FALSE'}`;
    case 'SHORT_ANSWER':
      return `reference: ${q.answerText ?? ''} | key terms: ${(q.keyTerms ?? []).join('; ')}`;
    default:
      return `answer: ${[q.answerText ?? '', ...(q.acceptedAnswers ?? [])].join(' | ')}`;
  }
}

function answerBlock(q: ExamQuestionDraft): string[] {
  switch (q.type) {
    case 'MULTIPLE_CHOICE':
      return (q.options ?? []).map((o, i) => `\t${i === q.answerIndex ? '=' : '~'}${escapeGift(o)}`);
    case 'TRUE_FALSE':
      return [];
    case 'SHORT_ANSWER':
      return [`\t=${shortAnswer(q.answerText ?? '')}`];
    default:
      return [q.answerText ?? '', ...(q.acceptedAnswers ?? [])].filter(Boolean).map((a) => `\t=${shortAnswer(a)}`);
  }
}

function giftQuestion(q: ExamQuestionDraft, i: number): string {
  const s = q.source;
  const feedback = `####${escapeGift(q.explanation)}`;
  const lines = [
    comment(`question ${i + 1}: ${q.type} | ${keyComment(q)}`),
    comment(`source: ${s.documentTitle} (document ${s.documentId}, chunk ${s.chunkId}), ${pageLabel(s)}: "${s.sentence}"`),
  ];
  const head = `::${escapeGift(questionName(q, i))}::[plain]${escapeGift(q.stem)}`;
  if (q.type === 'TRUE_FALSE') return [...lines, `${head}{${q.answerBool ? 'TRUE' : 'FALSE'}${feedback}}`].join('\n');
  return [...lines, `${head}{`, ...answerBlock(q), `\t${feedback}`, '}'].join('\n');
}

/** The exam as a GIFT file (questions separated by blank lines). */
export function toGift(exam: Exam): string {
  const header = [comment(`exam: ${exam.title}`), comment(`${exam.questions.length} questions, exported by AI-Teacher`)].join('\n');
  return [header, ...exam.questions.map(giftQuestion)].join('\n\n') + '\n';
}
