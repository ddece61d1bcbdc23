import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GENERATED } from '../../scripts/eval-tutor/documents.js';
import { QUESTIONS } from '../../scripts/eval-tutor/questions.js';
import { evalStackOptions, prepareMaterials, runQuestions, type Materials } from '../../scripts/eval-tutor/run.js';
import { KINDS, summarise, TARGETS, type Result } from '../../scripts/eval-tutor/score.js';
import { startTestStack, type TestStack } from '../support/stack.js';

/**
 * `npm run eval:tutor` on the generated documents only (no ../shared needed): every question
 * about them, through the same code path (ingestion through the API, askTutor, answerStream,
 * the same scoring), with the offline engine. Guards the tutor's quality targets in CI.
 */
const generated = GENERATED.map((d) => d.key);
const questions = QUESTIONS.filter((q) => generated.includes(q.material as never));

describe('the offline tutor on the eval:tutor question set (generated documents)', () => {
  let stack: TestStack;
  let materials: Materials;

  beforeAll(async () => {
    stack = await startTestStack(evalStackOptions({ offline: true }));
    materials = await prepareMaterials(stack, generated);
  }, 120_000);
  afterAll(() => stack?.stop());

  it('meets the targets of each kind of question', async () => {
    const { results } = await runQuestions(stack, materials, questions);
    expect(results).toHaveLength(questions.length);
    for (const kind of KINDS) expect(results.filter((r) => r.question.kind === kind).length).toBeGreaterThanOrEqual(6);
    expect(new Set(results.map((r) => r.answer.engine))).toEqual(new Set(['OFFLINE']));
    const summary = summarise(results);
    const failed = (r: Result) => `${r.question.id}: ${r.score.reasons.join('; ')}`;
    for (const kind of KINDS) {
      const { share } = summary.shares[kind].all;
      // On a miss, the diff shows the share and what failed.
      const failures = results.filter((r) => r.question.kind === kind && !r.score.pass).map(failed);
      expect({ kind, share, meetsTarget: share >= TARGETS[kind], failures }).toEqual({
        kind,
        share,
        meetsTarget: true,
        failures,
      });
    }
    expect(summary.met).toBe(true);
  }, 120_000);
});
