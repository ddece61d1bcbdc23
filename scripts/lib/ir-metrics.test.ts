import { describe, expect, it } from '@jest/globals';
import { ndcgAtK, parseQrels, recallAtK } from './ir-metrics.js';

describe('retrieval metrics', () => {
  const judged = new Map([
    ['d1', 2],
    ['d2', 1],
    ['d3', 0],
  ]);

  it('gives nDCG 1 for the ideal order and less for a worse one', () => {
    expect(ndcgAtK(['d1', 'd2', 'x'], judged, 10)).toBe(1);
    const swapped = ndcgAtK(['d2', 'd1'], judged, 10);
    const expected = (1 / 1 + 2 / Math.log2(3)) / (2 / 1 + 1 / Math.log2(3));
    expect(Math.abs(swapped - expected)).toBeLessThan(1e-12);
    expect(swapped).toBeLessThan(1);
    expect(ndcgAtK(['x', 'y'], judged, 10)).toBe(0);
    // Cut at k: d1 is second, beyond k = 1.
    expect(ndcgAtK(['x', 'd1'], judged, 1)).toBe(0);
  });

  it('counts recall over relevant documents only', () => {
    expect(recallAtK(['d1', 'd3'], judged, 100)).toBe(0.5);
    expect(recallAtK(['d2', 'd1'], judged, 1)).toBe(0.5);
  });

  it('parses BEIR qrels with a header', () => {
    const q = parseQrels('query-id\tcorpus-id\tscore\n1\tA\t1\n1\tB\t2\n2\tC\t1\n');
    expect([...q.get('1')!]).toStrictEqual([
      ['A', 1],
      ['B', 2],
    ]);
    expect(q.get('2')!.get('C')).toBe(1);
  });
});
