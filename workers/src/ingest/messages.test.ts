import { describe, expect, it } from '@jest/globals';
import { completionMessage } from './messages.js';

const none = { pages: [], confidence: null, skipped: [] };

describe('completionMessage', () => {
  it('counts passages and pages', () => {
    expect(completionMessage(1, 1, none)).toBe('1 passage from 1 page');
    expect(completionMessage(42, 14, none)).toBe('42 passages from 14 pages');
  });

  it('says how many pages OCR read, how confidently, and which it skipped', () => {
    expect(completionMessage(41, 23, { pages: [2, 3, 4], confidence: 95.44, skipped: [] })).toBe(
      '41 passages from 23 pages (3 pages read by OCR, mean confidence 95%)',
    );
    expect(completionMessage(9, 3, { pages: [1, 3], confidence: 88.6, skipped: [{ page: 2 }] })).toBe(
      '9 passages from 3 pages (2 pages read by OCR, mean confidence 89%; 1 page skipped: OCR found too little text, too low a confidence or took too long (page 2))',
    );
  });

  it('lists at most ten skipped pages', () => {
    const skipped = Array.from({ length: 12 }, (_, i) => ({ page: i + 2 }));
    expect(completionMessage(3, 13, { pages: [1], confidence: 70, skipped })).toMatch(
      /; 12 pages skipped: .* \(pages 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, …\)\)$/,
    );
  });
});
