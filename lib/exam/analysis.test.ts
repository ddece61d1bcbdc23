import { describe, expect, it } from '@jest/globals';
import { itemAnalysis, pearson } from './analysis.js';
import { mulberry32 } from './random.js';
import type { ExamQuestionDraft, SubmittedAttempt } from './types.js';

const source = { chunkId: 'c', documentId: 'd', documentTitle: 'T', pageStart: 1, pageEnd: 1, page: 1, sentence: 's' };
const mcq = (answerIndex: number): ExamQuestionDraft => ({
  type: 'MULTIPLE_CHOICE',
  stem: 'q',
  options: ['a', 'b', 'c', 'd'],
  answerIndex,
  explanation: 'e',
  source,
});
const EXAM: ExamQuestionDraft[] = [mcq(2), mcq(0), { type: 'TRUE_FALSE', stem: 't', answerBool: true, explanation: 'e', source }];

/**
 * Six attempts, three items (1 = correct):
 *
 *   attempt  item0 item1 item2  total | chosen options
 *   A1         1     1     1      3   |  2  0  0
 *   A2         1     1     0      2   |  2  0  1
 *   A3         1     0     1      2   |  2  3  0
 *   A4         0     1     0      1   |  0  0  1
 *   A5         1     0     0      1   |  2  1  1
 *   A6         0     0     0      0   |  -  3  1
 *
 * Item 0: p = 4/6. Rest score (total − item) = 2,1,1,1,0,0 (mean 5/6).
 *   Σdx·dy = 2/3, Σdx² = 4/3, Σdy² = 17/6 → r = (2/3) / √(4/3 · 17/6) = 2/√34 ≈ 0.3430.
 *   Uncorrected (with totals 3,2,2,1,1,0): Σdx·dy = 2, Σdy² = 11/2 → r = 2/√(22/3) = √(6/11) ≈ 0.7385.
 * Item 1: p = 1/2. Rest = 2,1,2,0,1,0 (mean 1): Σdx·dy = .5 + 0 − .5 − .5 + 0 + .5 = 0 → r = 0.
 *   Uncorrected: Σdx·dy = 1.5, Σdx² = 1.5, Σdy² = 5.5 → r = 1.5/√8.25 = √(3/11) ≈ 0.5222.
 * Item 2: p = 1/3. Rest = 2,2,1,1,1,0 (mean 7/6): Σdx·dy = 2/3, Σdx² = 4/3, Σdy² = 17/6 → r = 2/√34.
 */
const scores = [
  [1, 1, 1],
  [1, 1, 0],
  [1, 0, 1],
  [0, 1, 0],
  [1, 0, 0],
  [0, 0, 0],
];
const chosen: (number | null)[][] = [
  [2, 0, 0],
  [2, 0, 1],
  [2, 3, 0],
  [0, 0, 1],
  [2, 1, 1],
  [null, 3, 1],
];
const ATTEMPTS: SubmittedAttempt[] = scores.map((row, a) => ({
  responses: row.map((score, question) => ({ question, score, optionIndex: chosen[a]![question]! })),
}));

describe('itemAnalysis', () => {
  it('matches the hand-computed figures', () => {
    const [i0, i1, i2] = itemAnalysis(EXAM, ATTEMPTS);
    expect(i0!.responses).toBe(6);
    expect(i0!.difficulty).toBeCloseTo(4 / 6, 12);
    expect(i0!.discrimination).toBeCloseTo(2 / Math.sqrt(34), 12);
    expect(i0!.pointBiserialUncorrected).toBeCloseTo(Math.sqrt(6 / 11), 12);
    expect(i0!.optionCounts).toEqual([1, 0, 4, 0]);
    expect(i0!.omitted).toBe(1);

    expect(i1!.difficulty).toBeCloseTo(0.5, 12);
    expect(i1!.discrimination).toBeCloseTo(0, 12);
    expect(i1!.pointBiserialUncorrected).toBeCloseTo(Math.sqrt(3 / 11), 12);
    expect(i1!.optionCounts).toEqual([3, 1, 0, 2]);
    expect(i1!.omitted).toBe(0);

    expect(i2!.difficulty).toBeCloseTo(1 / 3, 12);
    expect(i2!.discrimination).toBeCloseTo(2 / Math.sqrt(34), 12);
    expect(i2!.optionCounts).toEqual([2, 4]);
  });

  it('uses the given attempt totals (in item points) and leaves out attempts without a response', () => {
    const withTotals = ATTEMPTS.map((a, i) => ({ ...a, totalScore: [3, 2, 2, 1, 1, 0][i]! }));
    expect(itemAnalysis(EXAM, withTotals)).toEqual(itemAnalysis(EXAM, ATTEMPTS));
    // Drop A6's answer to item 1: 5 responses, p = 3/5.
    const partial = ATTEMPTS.map((a, i) => (i === 5 ? { responses: a.responses.filter((r) => r.question !== 1) } : a));
    const [, i1] = itemAnalysis(EXAM, partial);
    expect(i1!.responses).toBe(5);
    expect(i1!.difficulty).toBeCloseTo(3 / 5, 12);
    expect(i1!.optionCounts).toEqual([3, 1, 0, 1]);
  });

  it('returns null statistics when they are undefined', () => {
    const allRight: SubmittedAttempt[] = [0, 1, 2].map(() => ({ responses: [{ question: 0, score: 1, optionIndex: 0 }] }));
    const [s] = itemAnalysis(1, allRight);
    expect(s).toMatchObject({ difficulty: 1, discrimination: null, pointBiserialUncorrected: null, optionCounts: [3], omitted: 0 });
    expect(itemAnalysis(2, [])).toEqual([
      { question: 0, responses: 0, difficulty: null, discrimination: null, pointBiserialUncorrected: null, optionCounts: [], omitted: 0 },
      { question: 1, responses: 0, difficulty: null, discrimination: null, pointBiserialUncorrected: null, optionCounts: [], omitted: 0 },
    ]);
    expect(pearson([1], [2])).toBeNull();
  });

  it('agrees with the point-biserial formula on a seeded set of 300 attempts', () => {
    const rnd = mulberry32(2024);
    const items = 12;
    const attempts: SubmittedAttempt[] = [];
    for (let a = 0; a < 300; a++) {
      const ability = rnd() * 4 - 2;
      const responses = Array.from({ length: items }, (_, q) => {
        const hardness = q / 3 - 2;
        const correct = rnd() < 1 / (1 + Math.exp(-(ability - hardness))) ? 1 : 0;
        return { question: q, score: correct, optionIndex: correct ? 0 : 1 + Math.floor(rnd() * 3) };
      });
      attempts.push({ responses });
    }
    const stats = itemAnalysis(items, attempts);
    for (const s of stats) {
      // r_pb = (M1 − M0) / s · √(p q), over the rest score (population SD).
      const rows = attempts.map((a) => {
        const item = a.responses[s.question]!.score;
        return { item, rest: a.responses.reduce((t, r) => t + r.score, 0) - item };
      });
      const n = rows.length;
      const p = rows.filter((r) => r.item === 1).length / n;
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const m1 = mean(rows.filter((r) => r.item === 1).map((r) => r.rest));
      const m0 = mean(rows.filter((r) => r.item === 0).map((r) => r.rest));
      const all = mean(rows.map((r) => r.rest));
      const sd = Math.sqrt(mean(rows.map((r) => (r.rest - all) ** 2)));
      expect(s.difficulty).toBeCloseTo(p, 12);
      expect(s.discrimination!).toBeCloseTo(((m1 - m0) / sd) * Math.sqrt(p * (1 - p)), 10);
      // The corrected index is below the uncorrected one (part-whole overlap removed).
      expect(s.discrimination!).toBeLessThan(s.pointBiserialUncorrected!);
      expect(s.optionCounts.reduce((a, b) => a + b, 0) + s.omitted).toBe(300);
      expect(s.optionCounts[0]).toBe(Math.round(p * 300));
    }
    // Items were made to discriminate: every corrected index is clearly positive.
    expect(Math.min(...stats.map((s) => s.discrimination!))).toBeGreaterThan(0.2);
  });
});
