import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { evaluate } from '../../scripts/lib/eval-retrieval.js';
import { startTestStack, type TestStack } from '../support/stack.js';

describe('retrieval evaluation on a BEIR-format collection', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ router: { RATE_LIMIT_TEACHER: '100000' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('ingests the tiny collection through the real path and scores it', async () => {
    const token = await stack.token(stack.user('eval'), 'TEACHER');
    const r = await evaluate(stack, token, 'tests/fixtures/beir-tiny');
    expect(r.documents).toBe(12);
    expect(r.queries).toBe(6);
    // Hand-made so that stemming and stop words matter; lexical BM25 should get nearly all of it.
    expect(r.ndcg10).toBeGreaterThan(0.85);
    expect(r.recall100).toBe(1);
    expect(r.latencyP50Ms).toBeGreaterThan(0);
  });
});
