import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ndcgAtK, parseQrels, recallAtK } from './ir-metrics.js';

describe('retrieval metrics', () => {
  const judged = new Map([
    ['d1', 2],
    ['d2', 1],
    ['d3', 0],
  ]);

  it('gives nDCG 1 for the ideal order and less for a worse one', () => {
    assert.equal(ndcgAtK(['d1', 'd2', 'x'], judged, 10), 1);
    const swapped = ndcgAtK(['d2', 'd1'], judged, 10);
    const expected = (1 / 1 + 2 / Math.log2(3)) / (2 / 1 + 1 / Math.log2(3));
    assert.ok(Math.abs(swapped - expected) < 1e-12);
    assert.equal(ndcgAtK(['x', 'y'], judged, 10), 0);
    assert.ok(ndcgAtK(['x', 'd1'], judged, 1) === 0, 'cut at k');
  });

  it('counts recall over relevant documents only', () => {
    assert.equal(recallAtK(['d1', 'd3'], judged, 100), 0.5);
    assert.equal(recallAtK(['d2', 'd1'], judged, 1), 0.5);
  });

  it('parses BEIR qrels with a header', () => {
    const q = parseQrels('query-id\tcorpus-id\tscore\n1\tA\t1\n1\tB\t2\n2\tC\t1\n');
    assert.deepEqual(
      [...q.get('1')!],
      [
        ['A', 1],
        ['B', 2],
      ],
    );
    assert.equal(q.get('2')!.get('C'), 1);
  });
});
