import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
    assert.deepEqual(
      fused.map((f) => f.id),
      ['b', 'a', 'c'],
    );
    assert.equal(fused[0]!.score, 1 / 62 + 1 / 61);
    assert.equal(fused[1]!.score, 1 / 61);
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
    assert.equal(fused[0]!.id, 'both');
  });

  it('breaks ties by id, deterministically', () => {
    assert.deepEqual(
      fuseRrf([[{ id: 'z', score: 1 }], [{ id: 'y', score: 1 }]]).map((f) => f.id),
      ['y', 'z'],
    );
  });
});
