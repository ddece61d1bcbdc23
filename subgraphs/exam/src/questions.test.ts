import { describe, expect, it } from '@jest/globals';
import { GraphQLError } from 'graphql';
import { COURSE_PASSAGES } from '@lib/exam/fixtures/course.js';
import type { ExamQuestionDraft } from '@lib/exam/index.js';
import { answersAllowed } from './context.js';
import { checkQuestion } from './questions.js';

const passage = COURSE_PASSAGES.find((p) => p.chunkId === 'h2')!;
const sentence = 'The storming of the Bastille took place on 14 July 1789 in Paris.';
const source = {
  chunkId: passage.chunkId,
  documentId: passage.documentId,
  documentTitle: passage.documentTitle,
  pageStart: 2,
  pageEnd: 2,
  page: 2,
  pageExact: true,
  sentence,
};
const mc: ExamQuestionDraft = {
  type: 'MULTIPLE_CHOICE',
  stem: 'The storming of the Bastille took place on 14 July _____ in Paris.',
  options: ['1788', '1789', '1791', '1793'],
  answerIndex: 1,
  explanation: 'The course says 1789.',
  source,
};

/** The field a refused question names (undefined when accepted). */
function fieldOf(q: ExamQuestionDraft): string | undefined {
  try {
    checkQuestion(q, passage);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(GraphQLError);
    expect((err as GraphQLError).extensions['code']).toBe('BAD_USER_INPUT');
    return (err as GraphQLError).extensions['field'] as string;
  }
}

describe('checkQuestion (teachers’ edits)', () => {
  it('accepts a question that passes every check of a generated one', () => {
    expect(fieldOf(mc)).toBeUndefined();
    expect(
      fieldOf({ type: 'TRUE_FALSE', stem: `True or false: ${sentence}`, answerBool: true, explanation: 'Yes.', source }),
    ).toBeUndefined();
  });

  it.each([
    ['three options', { options: ['1788', '1789', '1791'] }, 'options'],
    ['two options alike', { options: ['1788', '1789', ' 1789 ', '1793'] }, 'options'],
    ['an empty option', { options: ['1788', '1789', '', '1793'] }, 'options'],
    ['no key', { answerIndex: undefined }, 'answerIndex'],
    ['a key out of range', { answerIndex: 4 }, 'answerIndex'],
    ['a key not in the source', { options: ['1788', '1790', '1791', '1793'] }, 'options'],
    ['a second correct option (Paris is in the sentence)', { options: ['Paris', '1789', '1791', '1793'] }, 'options'],
    ['the key in the stem', { stem: 'In 1789, when was the Bastille stormed?' }, 'stem'],
    ['an empty stem', { stem: '' }, 'stem'],
    ['no explanation', { explanation: '' }, 'explanation'],
    ['a sentence not in the passage', { source: { ...source, sentence: 'The Bastille was stormed in 1790.' } }, 'source'],
  ] as const)('refuses %s, naming the field', (_, patch, field) => {
    expect(fieldOf({ ...mc, ...patch } as ExamQuestionDraft)).toBe(field);
  });

  it('names the field of other types too', () => {
    expect(fieldOf({ type: 'TRUE_FALSE', stem: `True or false: ${sentence}`, explanation: 'x', source })).toBe('answerBool');
    expect(fieldOf({ type: 'TRUE_FALSE', stem: sentence, answerBool: false, explanation: 'x', source })).toBe('stem');
    expect(fieldOf({ type: 'FILL_IN_THE_BLANK', stem: 'No blank here.', answerText: '1789', explanation: 'x', source })).toBe('stem');
    expect(fieldOf({ type: 'FILL_IN_THE_BLANK', stem: mc.stem, explanation: 'x', source })).toBe('answerText');
    expect(fieldOf({ type: 'FILL_IN_THE_BLANK', stem: mc.stem, answerText: '1790', explanation: 'x', source })).toBe('answerText');
    const sa = { type: 'SHORT_ANSWER' as const, stem: 'When was the Bastille stormed?', answerText: sentence, explanation: 'x', source };
    expect(fieldOf({ ...sa, keyTerms: ['1789'] })).toBeUndefined();
    expect(fieldOf({ ...sa, keyTerms: [] })).toBe('keyTerms');
    expect(fieldOf({ ...sa, keyTerms: ['Versailles'] })).toBe('keyTerms');
    expect(fieldOf({ ...sa, keyTerms: ['Bastille'] })).toBe('stem');
  });
});

describe('answersAllowed', () => {
  const now = Date.parse('2026-06-01T12:00:00Z');
  it('follows showAnswers', () => {
    expect(answersAllowed({ showAnswers: 'AFTER_SUBMIT', closesAt: null }, now)).toBe(true);
    expect(answersAllowed({ showAnswers: 'NEVER', closesAt: new Date(now - 1000) }, now)).toBe(false);
    expect(answersAllowed({ showAnswers: 'AFTER_CLOSE', closesAt: null }, now)).toBe(false);
    expect(answersAllowed({ showAnswers: 'AFTER_CLOSE', closesAt: new Date(now + 1000) }, now)).toBe(false);
    expect(answersAllowed({ showAnswers: 'AFTER_CLOSE', closesAt: new Date(now - 1000) }, now)).toBe(true);
  });
});
