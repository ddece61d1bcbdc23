/**
 * Classical item analysis over submitted attempts, pure.
 *
 * For each question:
 *   - difficulty: the share correct, i.e. the mean item score over the attempts
 *     that answered it (item scores are 0..1; 0/1 for objective items). Higher
 *     means easier (the "p-value" of classical test theory).
 *   - discrimination: the CORRECTED item-total correlation — Pearson's r between
 *     the item score and the attempt's total score minus this item's score
 *     (for 0/1 items this is the point-biserial correlation). Removing the item
 *     from the total avoids the part-whole inflation of the uncorrected index,
 *     which is also reported (`pointBiserialUncorrected`). Null when either
 *     variable has no variance or fewer than 2 attempts answered.
 *   - optionCounts: how often each option was chosen (MULTIPLE_CHOICE 4 options,
 *     TRUE_FALSE 2: 0 = true, 1 = false), `omitted` the responses without one
 *     (choice items only).
 *
 * An attempt's total is `totalScore` when given (in the same points as item
 * scores), else the sum of its item scores. An attempt that has no response to a
 * question is left out of that question's figures.
 */
import type { ExamQuestionDraft, ItemStatistics, SubmittedAttempt } from './types.js';

/** Pearson's r, or null with fewer than 2 pairs or a constant variable. */
export function pearson(x: readonly number[], y: readonly number[]): number | null {
  const n = x.length;
  if (n < 2 || y.length !== n) return null;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx <= 1e-12 || syy <= 1e-12) return null;
  return sxy / Math.sqrt(sxx * syy);
}

function optionsOf(q: ExamQuestionDraft | undefined): number {
  if (!q) return 0;
  if (q.type === 'MULTIPLE_CHOICE') return q.options?.length ?? 4;
  if (q.type === 'TRUE_FALSE') return 2;
  return 0;
}

/**
 * Item statistics for each question of an exam (or for `questions` items when a
 * count is given instead of the questions).
 */
export function itemAnalysis(questions: readonly ExamQuestionDraft[] | number, attempts: readonly SubmittedAttempt[]): ItemStatistics[] {
  const count = typeof questions === 'number' ? questions : questions.length;
  const totals = attempts.map((a) => a.totalScore ?? a.responses.reduce((s, r) => s + (Number.isFinite(r.score) ? r.score : 0), 0));
  const out: ItemStatistics[] = [];
  for (let q = 0; q < count; q++) {
    const item: number[] = [];
    const rest: number[] = [];
    const whole: number[] = [];
    const declared = typeof questions === 'number' ? 0 : optionsOf(questions[q]);
    const optionCounts = Array.from({ length: declared }, () => 0);
    let noOption = 0;
    attempts.forEach((a, i) => {
      const r = a.responses.find((x) => x.question === q);
      if (!r) return;
      const score = Number.isFinite(r.score) ? r.score : 0;
      item.push(score);
      whole.push(totals[i]!);
      rest.push(totals[i]! - score);
      if (r.optionIndex === null || r.optionIndex === undefined || !Number.isInteger(r.optionIndex) || r.optionIndex < 0) noOption++;
      else {
        while (optionCounts.length <= r.optionIndex) optionCounts.push(0);
        optionCounts[r.optionIndex]!++;
      }
    });
    out.push({
      question: q,
      responses: item.length,
      difficulty: item.length ? item.reduce((a, b) => a + b, 0) / item.length : null,
      discrimination: pearson(item, rest),
      pointBiserialUncorrected: pearson(item, whole),
      optionCounts,
      // Only choice items can omit a choice (a free-text item never has one).
      omitted: optionCounts.length ? noOption : 0,
    });
  }
  return out;
}
