import { describe, expect, it } from '@jest/globals';
import { gradeAnswer, matchesText, SHORT_ANSWER_PASS } from './grade.js';
import type { ExamQuestionDraft } from './types.js';

const source = {
  chunkId: 'c',
  documentId: 'd',
  documentTitle: 'T',
  pageStart: 1,
  pageEnd: 1,
  page: 1,
  sentence: 'Osmosis is the diffusion of water across a selectively permeable membrane.',
};
const mc: ExamQuestionDraft = {
  type: 'MULTIPLE_CHOICE',
  stem: '_____ is the diffusion of water across a selectively permeable membrane.',
  options: ['mitosis', 'osmosis', 'meiosis', 'photosynthesis'],
  answerIndex: 1,
  explanation: 'Source: T, p. 1.',
  source,
};
const tf: ExamQuestionDraft = {
  type: 'TRUE_FALSE',
  stem: 'True or false: Mitosis is the diffusion of water.',
  answerBool: false,
  explanation: 'x',
  source,
};
const fib = (answerText: string, acceptedAnswers?: string[]): ExamQuestionDraft => ({
  type: 'FILL_IN_THE_BLANK',
  stem: 'A _____ blank.',
  answerText,
  ...(acceptedAnswers ? { acceptedAnswers } : {}),
  explanation: 'x',
  source,
});
const sa: ExamQuestionDraft = {
  type: 'SHORT_ANSWER',
  stem: 'What is osmosis?',
  answerText: 'Osmosis is the diffusion of water across a selectively permeable membrane.',
  keyTerms: ['diffusion of water', 'permeable membrane'],
  explanation: 'x',
  source,
};

describe('gradeAnswer', () => {
  it('grades multiple choice by index, letter or option text', () => {
    expect(gradeAnswer(mc, 1)).toMatchObject({ correct: true, score: 1 });
    expect(gradeAnswer(mc, 'B')).toMatchObject({ correct: true, score: 1 });
    expect(gradeAnswer(mc, ' Osmosis ')).toMatchObject({ correct: true, score: 1 });
    const wrong = gradeAnswer(mc, 0);
    expect(wrong).toMatchObject({ correct: false, score: 0 });
    expect(wrong.feedback).toMatch(/the answer is B\) osmosis/);
    expect(gradeAnswer(mc, 7)).toMatchObject({ correct: false, score: 0 });
    expect(gradeAnswer(mc, null).feedback).toMatch(/No option chosen/);
  });

  it('grades true/false from booleans and words', () => {
    expect(gradeAnswer(tf, false)).toMatchObject({ correct: true, score: 1 });
    expect(gradeAnswer(tf, 'False')).toMatchObject({ correct: true });
    expect(gradeAnswer(tf, 't')).toMatchObject({ correct: false, score: 0 });
    expect(gradeAnswer(tf, 'maybe')).toMatchObject({ correct: false, score: 0 });
  });

  it('grades fill-in-the-blank with normalisation', () => {
    expect(gradeAnswer(fib('Estates-General'), '  the estates general ')).toMatchObject({ correct: true, score: 1 });
    expect(gradeAnswer(fib('cells'), 'Cell')).toMatchObject({ correct: true });
    expect(gradeAnswer(fib('Paris.'), 'paris')).toMatchObject({ correct: true });
    expect(gradeAnswer(fib('1,000'), '1000')).toMatchObject({ correct: true });
    expect(gradeAnswer(fib('17000'), '17,000')).toMatchObject({ correct: true });
    expect(gradeAnswer(fib('9.8'), '9.80')).toMatchObject({ correct: true });
    expect(gradeAnswer(fib('150 million'), '150,000,000')).toMatchObject({ correct: true });
    expect(gradeAnswer(fib('1789'), 'in 1789')).toMatchObject({ correct: true });
    expect(gradeAnswer(fib('1789'), '1798')).toMatchObject({ correct: false });
    expect(gradeAnswer(fib('1789'), '')).toMatchObject({ correct: false, score: 0 });
  });

  it('accepts small typos in long words only, never in numbers', () => {
    expect(gradeAnswer(fib('mitochondrion'), 'mitochondrian')).toMatchObject({ correct: true });
    expect(gradeAnswer(fib('photosynthesis'), 'fotosynthesis')).toMatchObject({ correct: true });
    expect(gradeAnswer(fib('photosynthesis'), 'photosinthesis')).toMatchObject({ correct: true });
    // Three edits are too many even for a long word.
    expect(gradeAnswer(fib('photosynthesis'), 'fotosinthesis')).toMatchObject({ correct: false });
    expect(gradeAnswer(fib('osmosis'), 'osmoses')).toMatchObject({ correct: true });
    expect(gradeAnswer(fib('Paris'), 'Pariz')).toMatchObject({ correct: false });
    expect(gradeAnswer(fib('joule'), 'joulle')).toMatchObject({ correct: false });
    expect(gradeAnswer(fib('Robespierre'), 'Robespiere')).toMatchObject({ correct: true });
    expect(matchesText('1793', '1739')).toBe(false);
  });

  it('accepts the accepted forms', () => {
    expect(gradeAnswer(fib('Isaac Newton', ['Newton']), 'newton')).toMatchObject({ correct: true });
    expect(gradeAnswer(fib('Isaac Newton', ['Newton']), 'Einstein')).toMatchObject({ correct: false });
  });

  it('gives short answers partial credit from key terms and overlap', () => {
    const full = gradeAnswer(sa, 'It is the diffusion of water across a selectively permeable membrane.');
    expect(full).toMatchObject({ correct: true, matchedKeyTerms: ['diffusion of water', 'permeable membrane'], missingKeyTerms: [] });
    expect(full.score).toBe(1);
    const half = gradeAnswer(sa, 'The diffusion of water.');
    expect(half.matchedKeyTerms).toEqual(['diffusion of water']);
    expect(half.missingKeyTerms).toEqual(['permeable membrane']);
    // 0.7 × 1/2 key terms + 0.3 × 2/6 of the reference's terms not in the question
    // (diffus, water, across, select, permeabl, membran; "osmosis" is asked): 0.35 + 0.10.
    expect(half.score).toBe(0.45);
    expect(half.correct).toBe(half.score >= SHORT_ANSWER_PASS);
    expect(half.feedback).toMatch(/missing: permeable membrane/);
    const none = gradeAnswer(sa, 'A kind of cell division.');
    expect(none).toMatchObject({ correct: false, matchedKeyTerms: [] });
    expect(none.score).toBeLessThan(0.2);
    expect(gradeAnswer(sa, '')).toMatchObject({ correct: false, score: 0, missingKeyTerms: sa.keyTerms });
  });

  it('tolerates typos in short answers and penalises a negation', () => {
    const typo = gradeAnswer(sa, 'the difusion of water through a permeable membrane');
    expect(typo.matchedKeyTerms).toEqual(['diffusion of water', 'permeable membrane']);
    expect(typo.correct).toBe(true);
    const negated = gradeAnswer(sa, 'It is not the diffusion of water across a permeable membrane.');
    expect(negated.score).toBeLessThan(typo.score);
    expect(negated.feedback).toMatch(/negates/);
  });

  it('uses the reference overlap alone without key terms', () => {
    const q = { ...sa, keyTerms: [] };
    expect(gradeAnswer(q, 'diffusion of water across a selectively permeable membrane').score).toBe(1);
  });
});
