import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { evaluate } from '../../scripts/lib/eval-retrieval.js';
import { startTestStack, type TestStack } from '../support/stack.js';

describe('retrieval evaluation on a BEIR-format collection', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack({ router: { RATE_LIMIT_TEACHER: '100000' } });
  });
  after(() => stack?.stop());

  it('ingests the tiny collection through the real path and scores it', async () => {
    const token = await stack.token(stack.user('eval'), 'TEACHER');
    const r = await evaluate(stack, token, 'tests/fixtures/beir-tiny');
    assert.equal(r.documents, 12);
    assert.equal(r.queries, 6);
    // Hand-made so that stemming and stop words matter; lexical BM25 should get nearly all of it.
    assert.ok(r.ndcg10 > 0.85, `nDCG@10 ${r.ndcg10}`);
    assert.equal(r.recall100, 1);
    assert.ok(r.latencyP50Ms > 0);
  });
});
