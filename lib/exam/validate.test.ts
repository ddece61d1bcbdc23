import { describe, expect, it } from '@jest/globals';
import { COURSE_PASSAGES } from './fixtures/course.js';
import type { ExamPassage, ExamQuestionDraft, ValidationRule } from './types.js';
import { maxKeysPerPosition, nearDuplicate, validateExam, validateQuestion } from './validate.js';

const passage = COURSE_PASSAGES.find((p) => p.chunkId === 'h2')!;
const SENTENCE = 'The storming of the Bastille took place on 14 July 1789 in Paris.';
const source = {
  chunkId: 'h2',
  documentId: passage.documentId,
  documentTitle: passage.documentTitle,
  pageStart: 2,
  pageEnd: 2,
  page: 2,
  sentence: SENTENCE,
};

const mc: ExamQuestionDraft = {
  type: 'MULTIPLE_CHOICE',
  stem: 'The storming of the Bastille took place on 14 July _____ in Paris.',
  options: ['1776', '1789', '1799', '1804'],
  answerIndex: 1,
  explanation: 'The answer is 1789.',
  source,
};
const tfTrue: ExamQuestionDraft = {
  type: 'TRUE_FALSE',
  stem: `True or false: ${SENTENCE}`,
  answerBool: true,
  explanation: 'True.',
  source,
};
const tfFalse: ExamQuestionDraft = {
  type: 'TRUE_FALSE',
  stem: 'True or false: The storming of the Bastille took place on 14 July 1799 in Paris.',
  answerBool: false,
  explanation: 'False: 1789.',
  source,
};
const fib: ExamQuestionDraft = {
  type: 'FILL_IN_THE_BLANK',
  stem: 'The storming of the Bastille took place on 14 July 1789 in _____.',
  answerText: 'Paris',
  explanation: 'Paris.',
  source,
};
const sa: ExamQuestionDraft = {
  type: 'SHORT_ANSWER',
  stem: 'What does the course say about the storming of the Bastille?',
  answerText: SENTENCE,
  keyTerms: ['1789', 'Paris'],
  explanation: 'It took place in 1789 in Paris.',
  source,
};

const rules = (q: ExamQuestionDraft, passages: ExamPassage[] = COURSE_PASSAGES): ValidationRule[] => [
  ...new Set(validateQuestion(q, passages).map((i) => i.rule)),
];

describe('validateQuestion', () => {
  it('accepts well-formed questions of every type', () => {
    for (const q of [mc, tfTrue, tfFalse, fib, sa]) expect(validateQuestion(q, COURSE_PASSAGES)).toEqual([]);
  });

  it('malformed: missing fields for the type', () => {
    expect(rules({ ...mc, options: undefined })).toEqual(['malformed']);
    expect(rules({ ...tfTrue, answerBool: undefined })).toEqual(['malformed']);
    expect(rules({ ...fib, answerText: '' })).toEqual(['malformed']);
    expect(rules({ ...fib, stem: 'No blank here at all, 1789.' })).toEqual(['malformed']);
    expect(rules({ ...sa, keyTerms: [] })).toEqual(['malformed']);
    expect(rules({ ...mc, stem: '  ' })).toEqual(['malformed']);
    expect(rules({ ...mc, explanation: '' })).toEqual(['malformed']);
    expect(rules({ ...mc, type: 'ESSAY' as ExamQuestionDraft['type'] })).toEqual(['malformed']);
  });

  it('source: unknown passage, other pages, a sentence not in the passage', () => {
    expect(rules({ ...mc, source: { ...source, chunkId: 'nope' } })).toEqual(['source']);
    expect(rules({ ...mc, source: { ...source, pageStart: 3, pageEnd: 3, page: 3 } })).toContain('source');
    expect(rules({ ...mc, source: { ...source, page: 7 } })).toEqual(['source']);
    expect(rules({ ...mc, source: { ...source, documentId: 'doc-physics' } })).toEqual(['source']);
    expect(rules({ ...fib, source: { ...source, sentence: 'Paris is the capital of France.' } })).toContain('source');
    // Whitespace runs do not matter.
    expect(rules({ ...mc, source: { ...source, sentence: SENTENCE.replace(/ /g, '\n  ') } })).toEqual([]);
  });

  it('source: the page must be the sentence’s page when the passage has page breaks', () => {
    const text = 'Isaac Newton published the Principia in 1687 in London. Albert Einstein published his theory in 1905 in Bern.';
    const paged: ExamPassage = {
      chunkId: 'pg',
      documentId: 'd',
      documentTitle: 'T',
      pageStart: 4,
      pageEnd: 5,
      text,
      pageBreaks: [text.indexOf('Albert')],
    };
    const q: ExamQuestionDraft = {
      type: 'FILL_IN_THE_BLANK',
      stem: 'Albert Einstein published his theory in _____ in Bern.',
      answerText: '1905',
      explanation: 'x',
      source: {
        chunkId: 'pg',
        documentId: 'd',
        documentTitle: 'T',
        pageStart: 4,
        pageEnd: 5,
        page: 5,
        sentence: text.slice(text.indexOf('Albert')),
      },
    };
    expect(rules(q, [paged])).toEqual([]);
    expect(rules({ ...q, source: { ...q.source, page: 4 } }, [paged])).toEqual(['source']);
  });

  it('unsupported: the key is not in the cited sentence', () => {
    expect(rules({ ...mc, options: ['1776', '1790', '1799', '1804'] })).toContain('unsupported');
    expect(rules({ ...fib, answerText: 'Lyon' })).toContain('unsupported');
    expect(rules({ ...sa, keyTerms: ['1789', 'Versailles'] })).toContain('unsupported');
    expect(rules({ ...sa, answerText: 'Napoleon crowned himself emperor at Notre-Dame.' })).toContain('unsupported');
    expect(rules({ ...tfTrue, stem: 'True or false: The storming of the Bastille took place on 14 July 1799 in Paris.' })).toContain(
      'unsupported',
    );
    expect(rules({ ...tfFalse, stem: tfTrue.stem })).toContain('unsupported');
    expect(rules({ ...tfFalse, stem: 'True or false: Water boils at 100 degrees at sea level.' })).toContain('unsupported');
  });

  it('unsupported: the normalised key is found (case, stems, thousands separators)', () => {
    const s2 = { ...source, chunkId: 'h4', documentId: 'doc-history', pageStart: 5, pageEnd: 5, page: 5 };
    s2.sentence = 'Around 17,000 people were officially executed during the Terror between 1793 and 1794.';
    expect(
      rules({
        ...fib,
        stem: 'Around _____ people were officially executed during the Terror between 1793 and 1794.',
        answerText: '17000',
        source: s2,
      }),
    ).toEqual([]);
    expect(rules({ ...fib, answerText: 'paris' })).toEqual([]);
  });

  it('options: exactly 4 options distinct after case and whitespace folding', () => {
    expect(rules({ ...mc, options: ['1776', '1789', '1799'] })).toEqual(['options']);
    expect(rules({ ...mc, options: ['1776', '1789', '1799', '1804', '1815'] })).toEqual(['options']);
    expect(rules({ ...mc, options: ['1776', '1789', ' 1776 ', '1804'] })).toEqual(['options']);
    expect(rules({ ...fib, type: 'MULTIPLE_CHOICE', options: ['Paris', 'Lyon', 'lyon', 'Nice'], answerIndex: 0 })).toEqual(['options']);
    expect(rules({ ...mc, options: ['1776', '1789', '', '1804'] })).toContain('options');
  });

  it('key: an index out of range, or a distractor that is also in the sentence', () => {
    expect(rules({ ...mc, answerIndex: 4 })).toEqual(['key']);
    expect(rules({ ...mc, answerIndex: 1.5 })).toEqual(['key']);
    expect(rules({ ...mc, answerIndex: undefined })).toEqual(['key']);
    const twoKeys: ExamQuestionDraft = {
      ...mc,
      stem: 'The storming of the _____ took place on 14 July 1789 in Paris.',
      options: ['Bastille', 'Paris', 'Louvre', 'Tuileries'],
      answerIndex: 0,
    };
    expect(rules(twoKeys)).toEqual(['key']);
  });

  it('answer-in-stem: the key (normalised, stemmed) is in the stem', () => {
    expect(rules({ ...mc, stem: `${SENTENCE} When?` })).toContain('answer-in-stem');
    expect(rules({ ...fib, stem: 'The storming of the Bastille took place in PARIS on 14 July 1789 in _____.' })).toContain(
      'answer-in-stem',
    );
    expect(rules({ ...sa, stem: 'What happened in Paris in 1789?' })).toEqual(['answer-in-stem']);
    const plural = { ...fib, stem: 'Stormings of _____ took place in 1789.', answerText: 'Bastille' };
    expect(rules({ ...plural, stem: 'The Bastilles took place: _____.' })).toContain('answer-in-stem');
  });

  it('distractor-kind: numbers for a number, years for a year, words for words', () => {
    expect(rules({ ...mc, options: ['1776', '1789', 'Paris', '1804'] })).toContain('distractor-kind');
    expect(rules({ ...mc, options: ['1776', '1789', '17.5', '1804'] })).toContain('distractor-kind');
    expect(rules({ ...fib, type: 'MULTIPLE_CHOICE', options: ['Paris', 'Lyon', '1804', 'Nice'], answerIndex: 0 })).toContain(
      'distractor-kind',
    );
  });
});

describe('validateExam', () => {
  const other = (i: number, answerIndex: number): ExamQuestionDraft => ({
    ...mc,
    stem: [
      'Alpha beta _____',
      'Gamma delta _____',
      'Epsilon zeta _____',
      'Eta theta _____',
      'Iota kappa _____',
      'Lambda mu _____',
      'Nu xi _____',
      'Omicron pi _____',
    ][i]!,
    answerIndex,
    source: { ...source, sentence: `${i}` },
  });

  it('finds near-duplicates by stem similarity and by source sentence', () => {
    const a = { ...fib };
    const b = { ...fib, stem: 'The storming of the Bastille happened on 14 July 1789 in _____.' };
    expect(nearDuplicate(a, b)).toBe(true);
    const issues = validateExam([a, sa, b]);
    expect(issues.map((i) => [i.rule, i.questions])).toEqual([['near-duplicate', [0, 2]]]);
    // Same sentence, different types and stems: allowed.
    expect(validateExam([mc, sa])).toEqual([]);
    // Same type from the same sentence: a duplicate even with different stems.
    expect(
      validateExam([fib, { ...fib, stem: '_____ saw the storming of a fortress in the summer of the revolution.' }]).map((i) => i.rule),
    ).toEqual(['near-duplicate']);
  });

  it('near-duplicate comparison ignores the generators’ template words', () => {
    const a: ExamQuestionDraft = { ...sa, stem: 'What is Kepler known for?' };
    const b: ExamQuestionDraft = { ...sa, stem: 'What is Napoleon known for?', source: { ...source, sentence: 'other' } };
    expect(nearDuplicate(a, b)).toBe(false);
  });

  it('checks that MC keys are spread over positions', () => {
    expect(maxKeysPerPosition(8)).toBe(3);
    expect(maxKeysPerPosition(10)).toBe(4);
    expect(maxKeysPerPosition(4)).toBe(2);
    const balanced = [0, 1, 2, 3, 1, 0, 3, 2].map((p, i) => other(i, p));
    expect(validateExam(balanced)).toEqual([]);
    const skewed = [0, 0, 0, 0, 1, 2, 3, 1].map((p, i) => other(i, p));
    expect(validateExam(skewed).map((i) => i.rule)).toEqual(['key-balance']);
  });

  it('checks that true/false keys are roughly balanced', () => {
    const tf = (i: number, answerBool: boolean): ExamQuestionDraft => ({
      ...tfTrue,
      stem: `True or false: statement ${['one', 'two', 'three', 'four', 'five', 'six'][i]}`,
      answerBool,
      source: { ...source, sentence: `${i}` },
    });
    expect(validateExam([true, false, true, false, true].map((b, i) => tf(i, b)))).toEqual([]);
    expect(validateExam([true, true, true, true, false].map((b, i) => tf(i, b))).map((i) => i.rule)).toEqual(['tf-balance']);
  });
});
