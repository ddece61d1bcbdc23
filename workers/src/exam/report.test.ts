import { describe, expect, it } from '@jest/globals';
import { completionMessage, failure, rejectionSummary } from './report.js';

describe('generation messages', () => {
  it('says how many were made and, when fewer than asked, why', () => {
    expect(completionMessage({ engine: 'OFFLINE', requested: 20, made: 20, rejected: { 'near-duplicate': 3 } })).toBe('Made 20 questions');
    expect(completionMessage({ engine: 'OFFLINE', requested: 1, made: 1, rejected: {} })).toBe('Made 1 question');
    expect(
      completionMessage({
        engine: 'OFFLINE',
        requested: 20,
        made: 14,
        rejected: { 'material-exhausted': 6, 'no-distractors': 12, 'near-duplicate': 3 },
      }),
    ).toBe(
      'Made 14 of 20 questions: the material ran out (6); candidates rejected: no distractors of the key’s kind 12, near-duplicates 3',
    );
    expect(completionMessage({ engine: 'MODEL', requested: 10, made: 8, rejected: { unsupported: 2, source: 1 } })).toBe(
      'Made 8 of 10 questions: 2 more failed validation even after a repair (answer not supported by the source 2, source not found in the passage 1)',
    );
    expect(
      completionMessage({ engine: 'MODEL', requested: 10, made: 3, rejected: {}, stopped: { code: 'MODEL_UNAVAILABLE', message: 'down' } }),
    ).toBe('Made 3 of 10 questions: the model stopped answering (MODEL_UNAVAILABLE) with 7 to go');
  });

  it('fails with a stable code when nothing was made', () => {
    expect(
      failure({ engine: 'OFFLINE', requested: 5, made: 0, rejected: { 'material-exhausted': 5 }, passages: 3, usableSentences: 0 }),
    ).toEqual({
      code: 'NOT_ENOUGH_MATERIAL',
      message: 'No question could be made from this material (0 usable sentences in 3 passages)',
    });
    expect(failure({ engine: 'MODEL', requested: 5, made: 0, rejected: { source: 4 }, passages: 3 }).code).toBe('NO_VALID_QUESTIONS');
    expect(
      failure({ engine: 'MODEL', requested: 5, made: 0, rejected: {}, passages: 3, stopped: { code: 'MODEL_ERROR', message: 'bad key' } }),
    ).toEqual({
      code: 'MODEL_ERROR',
      message: 'No question could be made: the model failed (bad key)',
    });
    expect(rejectionSummary({ a: 1, b: 5, c: 3, d: 2 }, 2)).toBe('b 5, c 3');
  });
});
