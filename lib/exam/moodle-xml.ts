/**
 * Moodle XML export: `<quiz>` with one `<question>` per question —
 * multichoice (single answer, shuffled by Moodle, A–D numbering), truefalse,
 * shortanswer (FILL_IN_THE_BLANK too, its text showing the blank as `_____`).
 * Texts are HTML in CDATA (HTML-escaped, "]]>" split across sections); short
 * answers are escaped XML text (with Moodle's `*` wildcard escaped as `\*`).
 * The general feedback holds the explanation and the source (document, page,
 * chunk, sentence); each question is also tagged with its source chunk and page,
 * and a comment says which answer is the key.
 */
import { questionName } from './gift.js';
import { pageLabel } from './text.js';
import type { Exam, ExamQuestionDraft } from './types.js';
import { cdata, escapeHtml, escapeXml } from './xml.js';

const html = (text: string) => cdata(`<p>${escapeHtml(text).replace(/\r\n?|\n/g, '<br>')}</p>`);
/** An XML comment: no "--" inside, no "-" at the end. */
const comment = (text: string) =>
  `<!-- ${escapeXml(text)
    .replace(/-(?=-)/g, '- ')
    .replace(/-$/, '- ')} -->`;

function feedbackHtml(q: ExamQuestionDraft): string {
  const s = q.source;
  const source = `Source: ${s.documentTitle} (document ${s.documentId}, chunk ${s.chunkId}), ${pageLabel(s)}: \u201c${s.sentence}\u201d`;
  const keyTerms = q.type === 'SHORT_ANSWER' && q.keyTerms?.length ? `<p>Key terms: ${escapeHtml(q.keyTerms.join('; '))}</p>` : '';
  return cdata(`<p>${escapeHtml(q.explanation)}</p>${keyTerms}<p>${escapeHtml(source)}</p>`);
}

function answer(fraction: number, textXml: string, format: 'html' | 'moodle_auto_format'): string {
  return [
    `    <answer fraction="${fraction}" format="${format}">`,
    `      <text>${textXml}</text>`,
    '      <feedback format="html"><text></text></feedback>',
    '    </answer>',
  ].join('\n');
}

function moodleType(q: ExamQuestionDraft): 'multichoice' | 'truefalse' | 'shortanswer' {
  return q.type === 'MULTIPLE_CHOICE' ? 'multichoice' : q.type === 'TRUE_FALSE' ? 'truefalse' : 'shortanswer';
}

function keyNote(q: ExamQuestionDraft): string {
  if (q.type === 'MULTIPLE_CHOICE') return `key: option ${String.fromCharCode(65 + (q.answerIndex ?? 0))}`;
  if (q.type === 'TRUE_FALSE') return `key: ${q.answerBool ? 'true' : 'false'}`;
  return `key: ${q.answerText ?? ''}`;
}

function questionXml(q: ExamQuestionDraft, i: number): string {
  const lines = [
    `  ${comment(`question ${i + 1}: ${q.type}, ${keyNote(q)}`)}`,
    `  <question type="${moodleType(q)}">`,
    `    <name><text>${escapeXml(questionName(q, i))}</text></name>`,
    `    <questiontext format="html"><text>${html(q.stem)}</text></questiontext>`,
    `    <generalfeedback format="html"><text>${feedbackHtml(q)}</text></generalfeedback>`,
    '    <defaultgrade>1</defaultgrade>',
    `    <penalty>${q.type === 'TRUE_FALSE' ? 1 : 0.3333333}</penalty>`,
    '    <hidden>0</hidden>',
  ];
  if (q.type === 'MULTIPLE_CHOICE') {
    lines.push(
      '    <single>true</single>',
      '    <shuffleanswers>true</shuffleanswers>',
      '    <answernumbering>ABCD</answernumbering>',
      ...(q.options ?? []).map((o, j) => answer(j === q.answerIndex ? 100 : 0, html(o), 'html')),
    );
  } else if (q.type === 'TRUE_FALSE') {
    lines.push(answer(q.answerBool ? 100 : 0, 'true', 'moodle_auto_format'), answer(q.answerBool ? 0 : 100, 'false', 'moodle_auto_format'));
  } else {
    const answers = q.type === 'SHORT_ANSWER' ? [q.answerText ?? ''] : [q.answerText ?? '', ...(q.acceptedAnswers ?? [])];
    lines.push(
      '    <usecase>0</usecase>',
      ...answers.filter(Boolean).map((a) => answer(100, escapeXml(a).replace(/\*/g, '\\*'), 'moodle_auto_format')),
    );
  }
  const s = q.source;
  lines.push(
    '    <tags>',
    `      <tag><text>${escapeXml(`source-chunk:${s.chunkId}`)}</text></tag>`,
    `      <tag><text>${escapeXml(`source-page:${s.page}`)}</text></tag>`,
    '    </tags>',
    '  </question>',
  );
  return lines.join('\n');
}

/** The exam as a Moodle XML question file. */
export function toMoodleXml(exam: Exam): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<quiz>',
    `  ${comment(`exam: ${exam.title}`)}`,
    ...exam.questions.map(questionXml),
    '</quiz>',
    '',
  ].join('\n');
}
