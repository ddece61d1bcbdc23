import { describe, expect, it, jest } from '@jest/globals';
import { COURSE_PASSAGES } from './fixtures/course.js';
import { generateOffline, generationStats } from './offline.js';
import type { ExamPassage, ExamQuestionDraft, QuestionType } from './types.js';
import { validateExam, validateQuestion } from './validate.js';

// ---------------------------------------------------------------------------
// An independent judge, written without lib/exam's helpers (no stemming, no
// lexical.ts): plain lower-cased words and substring checks.
// ---------------------------------------------------------------------------

const lower = (s: string) =>
  s
    .toLowerCase()
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/\s+/g, ' ')
    .trim();
const noCommas = (s: string) => s.replace(/(\d),(\d{3})/g, '$1$2');
const wordsOf = (s: string) => noCommas(lower(s)).match(/[\p{L}\p{N}]+/gu) ?? [];

/** Whether `needle`'s words appear, in order and contiguous, among `hay`'s words (allowing a plural "s"). */
function hasWords(hay: string, needle: string): boolean {
  const h = wordsOf(hay);
  const n = wordsOf(needle);
  if (!n.length) return false;
  const same = (a: string, b: string) => a === b || a === `${b}s` || b === `${a}s` || a === `${b}es` || b === `${a}es`;
  for (let i = 0; i + n.length <= h.length; i++) if (n.every((w, j) => same(h[i + j]!, w))) return true;
  return false;
}

const TEMPLATE_WORDS = new Set([
  'true',
  'or',
  'false',
  'what',
  'does',
  'the',
  'course',
  'say',
  'about',
  'is',
  'are',
  'known',
  'for',
  'who',
  'a',
  'an',
  'of',
  'in',
]);
function stemWords(stem: string): Set<string> {
  return new Set(wordsOf(stem.replace(/_{3,}/g, ' ')).filter((w) => !TEMPLATE_WORDS.has(w)));
}
function jaccardOf(a: Set<string>, b: Set<string>): number {
  const inter = [...a].filter((x) => b.has(x)).length;
  return inter / (a.size + b.size - inter || 1);
}

function judge(q: ExamQuestionDraft, passages: ExamPassage[]): string[] {
  const problems: string[] = [];
  const passage = passages.find((p) => p.chunkId === q.source.chunkId);
  if (!passage) return ['source passage missing'];
  const passageText = lower(passage.text);
  if (!passageText.includes(lower(q.source.sentence))) problems.push('sentence not in passage');
  if (q.source.pageStart !== passage.pageStart || q.source.pageEnd !== passage.pageEnd) problems.push('pages differ');
  if (q.source.page < passage.pageStart || q.source.page > passage.pageEnd) problems.push('page outside passage');
  if (q.type === 'MULTIPLE_CHOICE') {
    const opts = q.options ?? [];
    if (opts.length !== 4) problems.push('not 4 options');
    if (new Set(opts.map(lower)).size !== opts.length) problems.push('duplicate options');
    if (!Number.isInteger(q.answerIndex) || q.answerIndex! < 0 || q.answerIndex! > 3) problems.push('no single key');
    const key = opts[q.answerIndex ?? -1] ?? '';
    if (hasWords(q.stem, key)) problems.push('key in stem');
    if (!hasWords(passage.text, key)) problems.push('key not in passage');
    opts.forEach((o, i) => {
      if (i !== q.answerIndex && hasWords(q.source.sentence, o)) problems.push(`distractor ${o} in source sentence`);
    });
  } else if (q.type === 'FILL_IN_THE_BLANK') {
    if ((q.stem.match(/_{5}/g) ?? []).length !== 1) problems.push('not one blank');
    if (!q.answerText || !hasWords(passage.text, q.answerText)) problems.push('answer not in passage');
    if (q.answerText && hasWords(q.stem, q.answerText)) problems.push('answer in stem');
    if (q.answerText && lower(q.stem.replace('_____', q.answerText)).replace(/a\(n\)/g, '') === '') problems.push('empty');
  } else if (q.type === 'TRUE_FALSE') {
    const statement = q.stem.replace(/^true or false:\s*/i, '');
    if (typeof q.answerBool !== 'boolean') problems.push('no truth value');
    else if (q.answerBool && lower(statement) !== lower(q.source.sentence)) problems.push('true statement differs from the sentence');
    else if (!q.answerBool && lower(statement) === lower(q.source.sentence)) problems.push('false statement is the sentence');
  } else {
    if (!q.answerText || !q.keyTerms?.length) problems.push('no reference or key terms');
    for (const t of q.keyTerms ?? []) {
      if (!hasWords(passage.text, t)) problems.push(`key term ${t} not in passage`);
      if (hasWords(q.stem, t)) problems.push(`key term ${t} in stem`);
    }
  }
  if (!q.explanation.trim()) problems.push('no explanation');
  return problems;
}

/** Exam-level judge: near-duplicate stems and key positions. */
function judgeExam(questions: ExamQuestionDraft[]): string[] {
  const problems: string[] = [];
  const sets = questions.map((q) => stemWords(q.stem));
  for (let i = 0; i < questions.length; i++)
    for (let j = i + 1; j < questions.length; j++)
      if (jaccardOf(sets[i]!, sets[j]!) >= 0.6) problems.push(`near-duplicate stems ${i} ${j}`);
  const mc = questions.filter((q) => q.type === 'MULTIPLE_CHOICE');
  if (mc.length >= 8) {
    const counts = [0, 1, 2, 3].map((p) => mc.filter((q) => q.answerIndex === p).length);
    if (Math.max(...counts) > 0.4 * mc.length) problems.push(`keys by position ${counts.join('/')}`);
  }
  return problems;
}

const ALL: QuestionType[] = ['MULTIPLE_CHOICE', 'TRUE_FALSE', 'SHORT_ANSWER', 'FILL_IN_THE_BLANK'];
const MIXES: QuestionType[][] = [
  ALL,
  ['MULTIPLE_CHOICE'],
  ['TRUE_FALSE'],
  ['FILL_IN_THE_BLANK', 'SHORT_ANSWER'],
  ['MULTIPLE_CHOICE', 'TRUE_FALSE'],
];
const SEEDS = [1, 2, 42];

const run = (types: QuestionType[], seed: number, extra: Partial<Parameters<typeof generateOffline>[0]> = {}) =>
  generateOffline({ passages: COURSE_PASSAGES, questionCount: 20, types, seed, ...extra });

describe('generateOffline on the fixture course', () => {
  it('is reproducible with the same seed and differs with another', () => {
    const a = run(ALL, 7);
    const b = run(ALL, 7);
    const c = run(ALL, 8);
    expect(b).toEqual(a);
    expect(c.questions.map((q) => q.stem)).not.toEqual(a.questions.map((q) => q.stem));
  });

  for (const types of MIXES) {
    it(`makes 20 valid questions for ${types.join('+')}`, () => {
      for (const seed of SEEDS) {
        const { questions, rejected, candidates } = run(types, seed);
        expect(questions).toHaveLength(20);
        expect(candidates).toBeGreaterThanOrEqual(20);
        expect(Object.values(rejected).every((n) => Number.isInteger(n) && n! > 0)).toBe(true);
        for (const q of questions) {
          expect(types).toContain(q.type);
          expect(validateQuestion(q, COURSE_PASSAGES)).toEqual([]);
        }
        expect(validateExam(questions)).toEqual([]);
        // Mixed types: as even as the plan allows.
        const byType = types.map((t) => questions.filter((q) => q.type === t).length);
        expect(Math.max(...byType) - Math.min(...byType)).toBeLessThanOrEqual(1);
      }
    });
  }

  it('keeps questions that an independent judge finds valid (≥ 95 %)', () => {
    let total = 0;
    let good = 0;
    const failures: string[] = [];
    for (const types of MIXES) {
      for (const seed of SEEDS) {
        const { questions } = run(types, seed);
        expect(judgeExam(questions)).toEqual([]);
        for (const q of questions) {
          total++;
          const problems = judge(q, COURSE_PASSAGES);
          if (problems.length) failures.push(`${q.type} "${q.stem}": ${problems.join(', ')}`);
          else good++;
        }
      }
    }
    expect(total).toBe(MIXES.length * SEEDS.length * 20);
    expect({ share: good / total >= 0.95, failures: failures.slice(0, 5) }).toEqual({ share: true, failures: failures.slice(0, 5) });
    expect(good / total).toBeGreaterThanOrEqual(0.95);
  });

  it('draws distractors of the key’s kind: numbers for numbers, years for years, words for words', () => {
    let numeric = 0;
    let years = 0;
    for (const seed of [1, 2, 3, 4, 5]) {
      for (const q of run(['MULTIPLE_CHOICE'], seed).questions) {
        const opts = q.options!;
        const key = opts[q.answerIndex!]!;
        const isNum = (s: string) => /^\d{1,3}(,\d{3})*(\.\d+)?( (thousand|million|billion|trillion))?$|^\d+(\.\d+)?$/.test(s);
        if (/^(1\d{3}|20\d{2})$/.test(key)) {
          years++;
          for (const o of opts) expect(o).toMatch(/^(1\d{3}|20\d{2})$/);
          // Plausible: within 60 years of the key.
          for (const o of opts) expect(Math.abs(Number(o) - Number(key))).toBeLessThanOrEqual(60);
        } else if (isNum(key)) {
          numeric++;
          for (const o of opts) expect(isNum(o)).toBe(true);
          // Same format: decimals and thousands separators like the key.
          const decimals = (s: string) => /\.(\d+)/.exec(s)?.[1]?.length ?? 0;
          for (const o of opts) expect(decimals(o)).toBe(decimals(key));
        } else {
          for (const o of opts) expect(isNum(o)).toBe(false);
        }
      }
    }
    expect(years).toBeGreaterThan(0);
    expect(numeric).toBeGreaterThan(0);
  });

  it('gives people as distractors for a person', () => {
    const people = new Set([
      'Isaac Newton',
      'Newton',
      'Albert Einstein',
      'Einstein',
      'Johannes Kepler',
      'Kepler',
      'Galileo Galilei',
      'Galilei',
      'Blaise Pascal',
      'Pascal',
      'Robert Hooke',
      'Hooke',
      'Matthias Schleiden',
      'Schleiden',
      'Theodor Schwann',
      'Schwann',
      'Rudolf Virchow',
      'Virchow',
      'James Watson',
      'Watson',
      'Francis Crick',
      'Crick',
      'Rosalind Franklin',
      'Franklin',
      'Gregor Mendel',
      'Mendel',
      'King Louis XVI',
      'Louis XVI',
      'Louis XVIII',
      'Maximilien Robespierre',
      'Robespierre',
      'Napoleon Bonaparte',
      'Napoleon',
      'Bonaparte',
      'Klemens von Metternich',
      'Metternich',
      'Gebhard von Blücher',
      'Blücher',
      'Duke of Wellington',
    ]);
    let seen = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      for (const q of run(['MULTIPLE_CHOICE'], seed).questions) {
        const key = q.options![q.answerIndex!]!;
        if (!people.has(key)) continue;
        seen++;
        for (const o of q.options!) expect(people.has(o)).toBe(true);
      }
    }
    expect(seen).toBeGreaterThan(0);
  });

  it('cites the passage and page each sentence came from, verbatim', () => {
    for (const q of run(ALL, 3).questions) {
      const passage = COURSE_PASSAGES.find((p) => p.chunkId === q.source.chunkId)!;
      expect(passage.text).toContain(q.source.sentence);
      expect(q.source).toMatchObject({
        documentId: passage.documentId,
        documentTitle: passage.documentTitle,
        pageStart: passage.pageStart,
        pageEnd: passage.pageEnd,
      });
      expect(q.source.page).toBe(passage.pageStart);
    }
  });

  it('uses the exact page when a passage has page breaks', () => {
    const passage: ExamPassage = {
      chunkId: 'x1',
      documentId: 'doc-x',
      documentTitle: 'Paged',
      pageStart: 3,
      pageEnd: 4,
      text: 'Isaac Newton published the Principia in the year 1687 in London. Albert Einstein published the special theory of relativity in 1905 in Bern.',
    };
    passage.pageBreaks = [passage.text.indexOf('Albert')];
    const { questions } = generateOffline({ passages: [passage], questionCount: 2, types: ['FILL_IN_THE_BLANK'], seed: 1 });
    expect(questions).toHaveLength(2);
    for (const q of questions) expect(q.source.page).toBe(q.source.sentence.startsWith('Albert') ? 4 : 3);
  });

  it('spreads questions over passages and pages', () => {
    const { questions } = run(ALL, 5);
    const perPassage = new Map<string, number>();
    for (const q of questions) perPassage.set(q.source.chunkId, (perPassage.get(q.source.chunkId) ?? 0) + 1);
    expect(perPassage.size).toBeGreaterThanOrEqual(15);
    expect(Math.max(...perPassage.values())).toBeLessThanOrEqual(2);
    expect(new Set(questions.map((q) => q.source.documentId)).size).toBe(3);
    expect(new Set(questions.map((q) => q.source.sentence)).size).toBe(questions.length);
  });

  it('skips headings, fragments, questions, references, table rows and context-dependent sentences', () => {
    const { questions, sentences } = run(ALL, 1);
    expect(sentences.skipped).toMatchObject({ heading: 4, question: 2, reference: 3, numeric: 1 });
    expect(sentences.skipped.fragment).toBeGreaterThanOrEqual(2);
    expect(sentences.skipped['context-dependent']).toBeGreaterThanOrEqual(3);
    for (const q of questions) {
      expect(q.source.sentence).not.toMatch(/^#|\?$|https?:|Ref:|^Table|^He |^Their /);
    }
  });

  it('balances true/false keys', () => {
    for (const seed of SEEDS) {
      const tf = run(['TRUE_FALSE'], seed).questions;
      const trues = tf.filter((q) => q.answerBool).length;
      expect(trues).toBe(10);
      for (const q of tf.filter((x) => !x.answerBool)) {
        expect(q.stem.replace(/^True or false: /, '')).not.toBe(q.source.sentence);
        expect(q.explanation).toMatch(/^False: the source says/);
      }
    }
  });

  it('reports progress and validates its options', () => {
    const onProgress = jest.fn<(made: number, target: number) => void>();
    run(['FILL_IN_THE_BLANK'], 1, { questionCount: 5, onProgress });
    expect(onProgress.mock.calls).toEqual([
      [1, 5],
      [2, 5],
      [3, 5],
      [4, 5],
      [5, 5],
    ]);
    expect(() => run(ALL, 1, { questionCount: 0 })).toThrow(/questionCount/);
    expect(() => run(ALL, 1, { questionCount: 51 })).toThrow(/questionCount/);
    expect(() => run([], 1)).toThrow(/types/);
    expect(() => run(['ESSAY' as QuestionType], 1)).toThrow(/unknown question type/);
    expect(() => run(ALL, Number.NaN)).toThrow(/seed/);
  });

  it('returns what it could make, with reasons, when the material is too thin', () => {
    const thin: ExamPassage[] = [
      { ...COURSE_PASSAGES[0]!, chunkId: 't1' },
      { chunkId: 't2', documentId: 'd', documentTitle: 'T', pageStart: 1, pageEnd: 1, text: '# Heading only\n\nWhat is this?' },
    ];
    const r = generateOffline({ passages: thin, questionCount: 10, types: ['MULTIPLE_CHOICE', 'FILL_IN_THE_BLANK'], seed: 1 });
    expect(r.questions.length).toBeLessThan(10);
    expect(r.questions.length).toBeGreaterThan(0);
    for (const q of r.questions) expect(validateQuestion(q, thin)).toEqual([]);
    expect(r.rejected['material-exhausted']).toBe(10 - r.questions.length);
    expect(r.sentences.skipped).toMatchObject({ heading: 2, question: 1 });
    const empty = generateOffline({ passages: [], questionCount: 3, types: ['TRUE_FALSE'], seed: 1 });
    expect(empty).toMatchObject({ questions: [], candidates: 0, rejected: { 'material-exhausted': 3 } });
  });

  it('changes distractors with the difficulty', () => {
    const spread = (difficulty: 'EASY' | 'HARD') => {
      const gaps: number[] = [];
      for (const seed of [1, 2, 3]) {
        for (const q of run(['MULTIPLE_CHOICE'], seed, { difficulty }).questions) {
          const key = q.options![q.answerIndex!]!;
          if (!/^1\d{3}$/.test(key)) continue;
          for (const o of q.options!) if (o !== key) gaps.push(Math.abs(Number(o) - Number(key)));
        }
      }
      return gaps.reduce((a, b) => a + b, 0) / gaps.length;
    };
    expect(spread('EASY')).toBeGreaterThan(spread('HARD'));
  });
});

describe('generateOffline over text with line breaks (as PDF passages have)', () => {
  it('gives options, answers and key terms on one line, and still cites the sentence verbatim', () => {
    // Every fourth space a line break: multi-word terms ("National Assembly") get split across lines.
    const broken = COURSE_PASSAGES.map((p) => {
      let n = 0;
      return { ...p, text: p.text.replace(/ /g, () => (++n % 4 === 0 ? '\n' : ' ')) };
    });
    const { questions } = generateOffline({ passages: broken, questionCount: 30, types: ALL, seed: 4 });
    expect(questions.length).toBeGreaterThan(20);
    const shown = questions.flatMap((q) => [
      q.stem,
      q.explanation,
      ...(q.options ?? []),
      q.answerText ?? '',
      ...(q.acceptedAnswers ?? []),
      ...(q.keyTerms ?? []),
    ]);
    for (const text of shown) expect(text).not.toMatch(/\n|\s{2}/);
    // A multi-word key split by a line break is still offered as one line.
    expect(questions.some((q) => (q.options ?? []).some((o) => o.includes(' ')))).toBe(true);
    for (const q of questions) {
      expect(validateQuestion(q, broken)).toEqual([]);
      expect(broken.find((p) => p.chunkId === q.source.chunkId)!.text).toContain(q.source.sentence);
    }
  });
});

describe('generationStats', () => {
  it('reports the share of candidates valid before filtering', () => {
    const stats = generationStats({ passages: COURSE_PASSAGES, types: ALL, seed: 1 });
    expect(stats.sentences).toBeGreaterThan(60);
    expect(stats.candidates).toBeGreaterThan(stats.sentences);
    expect(stats.valid).toBeLessThanOrEqual(stats.candidates);
    expect(stats.share).toBeCloseTo(stats.valid / stats.candidates, 10);
    expect(stats.share).toBeGreaterThan(0.9);
  });
});
