import { describe, expect, it } from '@jest/globals';
import { judgeOcrPage, MIN_WORD_CONFIDENCE, ocrPageText } from './ocr-text.js';

const HEADER = 'level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext';

/** A TSV line row (level 4) of `height` px, then one word row (level 5) per [text, conf]. */
function line(block: number, par: number, n: number, height: number, words: [string, number][]): string[] {
  return [
    `4\t1\t${block}\t${par}\t${n}\t0\t100\t${n * 40}\t1000\t${height}\t-1\t`,
    ...words.map(
      ([text, conf], i) => `5\t1\t${block}\t${par}\t${n}\t${i + 1}\t${100 + i * 80}\t${n * 40}\t70\t${height}\t${conf}\t${text}`,
    ),
  ];
}
const words = (text: string, conf = 95): [string, number][] => text.split(' ').map((w) => [w, conf]);
const tsv = (...rows: string[][]) => [HEADER, '1\t1\t0\t0\t0\t0\t0\t0\t1654\t2339\t-1\t', ...rows.flat()].join('\n') + '\n';

describe('ocrPageText', () => {
  it('joins words into lines and lines into paragraphs, a blank line between paragraphs', () => {
    const page = ocrPageText(
      tsv(
        line(1, 1, 1, 29, words('Photosynthesis converts light')),
        line(1, 1, 2, 29, words('into chemical energy.')),
        line(2, 1, 1, 29, words('Chlorophyll absorbs red light.')),
      ),
    );
    expect(page.text).toBe('Photosynthesis converts light\ninto chemical energy.\n\nChlorophyll absorbs red light.');
    expect(page.confidence).toBe(95);
    expect(page.chars).toBe(71); // letters and digits
  });

  it('rejoins a word hyphenated across lines, but not a dash before a capital', () => {
    const page = ocrPageText(
      tsv(
        line(1, 1, 1, 29, words('The mitochondrial mem-')),
        line(1, 1, 2, 29, words('brane is folded. Vitamin-')),
        line(1, 1, 3, 29, words('B12 matters.')),
      ),
    );
    expect(page.text).toBe('The mitochondrial membrane is folded. Vitamin-\nB12 matters.');
  });

  it('marks a short paragraph in clearly larger type as a heading: # from 1.6 times the body height, ## from 1.25', () => {
    const body = Array.from({ length: 6 }, (_, i) =>
      line(3, 1, i + 1, 29, words('Body text of the page with enough words to dominate it.')),
    );
    const page = ocrPageText(tsv(line(1, 1, 1, 49, words('Chapter Three')), line(2, 1, 1, 38, words('3.1 Electrons')), ...body));
    const blocks = page.text.split('\n\n');
    expect(blocks[0]).toBe('# Chapter Three');
    expect(blocks[1]).toBe('## 3.1 Electrons');
    expect(blocks[2]!.startsWith('Body text')).toBe(true);
  });

  it(`leaves out words below a confidence of ${MIN_WORD_CONFIDENCE}, but counts them in the page's confidence, weighted by length`, () => {
    const page = ocrPageText(
      tsv(
        line(1, 1, 1, 29, [
          ['Osmosis', 90],
          ['~%x', 10],
          ['moves', 90],
          ['water', 90],
        ]),
        line(2, 1, 1, 29, [['|', 5]]),
      ),
    );
    expect(page.text).toBe('Osmosis moves water');
    // (7 + 5 + 5) x 90 + 3 x 10 + 1 x 5 over 21 characters.
    expect(page.confidence).toBeCloseTo((17 * 90 + 30 + 5) / 21, 1);
    expect(page.foundChars).toBe(18);
  });

  it('finds nothing on an empty page, and ignores empty words (tesseract reports some on pictures)', () => {
    expect(ocrPageText(tsv())).toEqual({ text: '', confidence: null, chars: 0, foundChars: 0 });
    const picture = ocrPageText(tsv(line(1, 1, 1, 200, [[' ', 95]]), line(2, 1, 1, 200, [['', 95]])));
    expect(picture).toEqual({ text: '', confidence: null, chars: 0, foundChars: 0 });
  });
});

describe('judgeOcrPage', () => {
  const limits = { minConfidence: 50, minChars: 20 };
  it('reads a page with enough text at enough confidence', () => {
    expect(judgeOcrPage({ text: 'x', confidence: 91.5, chars: 200, foundChars: 200 }, limits)).toEqual({
      outcome: 'read',
      confidence: 91.5,
    });
  });
  it('calls a page without letters or digits blank', () => {
    expect(judgeOcrPage({ text: '', confidence: null, chars: 0, foundChars: 0 }, limits)).toEqual({ outcome: 'blank' });
    expect(judgeOcrPage({ text: '| —', confidence: 80, chars: 0, foundChars: 0 }, limits)).toEqual({ outcome: 'blank' });
  });
  it('skips a page read with too low a confidence, or with too little text, saying which', () => {
    expect(judgeOcrPage({ text: '', confidence: 31, chars: 0, foundChars: 40 }, limits)).toEqual({
      outcome: 'skipped',
      reason: 'confidence 31 below 50',
      confidence: 31,
    });
    expect(judgeOcrPage({ text: 'Fig. 3', confidence: 88, chars: 4, foundChars: 4 }, limits)).toEqual({
      outcome: 'skipped',
      reason: '4 letters and digits, fewer than 20',
      confidence: 88,
    });
  });
});
