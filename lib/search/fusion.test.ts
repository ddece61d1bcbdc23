import { describe, expect, it } from '@jest/globals';
import { fuseRrf } from './fusion.js';

describe('reciprocal-rank fusion', () => {
  it('scores 1/(60+rank) per ranking and sums across rankings', () => {
    const fused = fuseRrf([
      [
        { id: 'a', score: 9 },
        { id: 'b', score: 5 },
      ],
      [
        { id: 'b', score: 0.9 },
        { id: 'c', score: 0.8 },
      ],
    ]);
    expect(fused.map((f) => f.id)).toStrictEqual(['b', 'a', 'c']);
    expect(fused[0]!.score).toBe(1 / 62 + 1 / 61);
    expect(fused[1]!.score).toBe(1 / 61);
  });

  it('lets a chunk both rankings like beat one that only one ranking puts first', () => {
    const fused = fuseRrf([
      [
        { id: 'lex-only', score: 1 },
        { id: 'both', score: 1 },
      ],
      [
        { id: 'dense-only', score: 1 },
        { id: 'both', score: 1 },
      ],
    ]);
    expect(fused[0]!.id).toBe('both');
  });

  it('breaks ties by id, deterministically', () => {
    expect(fuseRrf([[{ id: 'z', score: 1 }], [{ id: 'y', score: 1 }]]).map((f) => f.id)).toStrictEqual(['y', 'z']);
  });
});
