import { describe, expect, it } from '@jest/globals';
import { spread } from './passages.js';

describe('spread', () => {
  const items = Array.from({ length: 1000 }, (_, i) => i);

  it('keeps everything when there is no more than asked for', () => {
    expect(spread(items.slice(0, 5), 10, 1)).toEqual([0, 1, 2, 3, 4]);
  });

  it('samples evenly over the whole material, from an offset the seed decides', () => {
    const a = spread(items, 100, 7);
    expect(a).toHaveLength(100);
    expect(new Set(a).size).toBe(100);
    for (let i = 1; i < a.length; i++) expect(a[i]! - a[i - 1]!).toBe(10);
    expect(a[a.length - 1]).toBeGreaterThanOrEqual(990);
    expect(spread(items, 100, 7)).toEqual(a);
    expect(spread(items, 100, 500)).not.toEqual(a);
  });
});
