import { describe, expect, it } from '@jest/globals';
import { pdfPageText, type PdfTextItem } from './pdf-text.js';

/** A text item at (x, y) in a font of `size` points, about 0.5 em per character wide. */
const item = (str: string, x: number, y: number, size = 10, hasEOL = false): PdfTextItem => ({
  str,
  transform: [size, 0, 0, size, x, y],
  width: str.length * size * 0.5,
  height: size,
  hasEOL,
});

describe('pdfPageText', () => {
  it('joins items into lines, adding a space only where there is a gap', () => {
    const { text } = pdfPageText([
      item('Photo', 72, 700),
      item('synthesis', 97, 700), // touching: one word
      item('needs', 150, 700), // gap: a space
      item('light', 72, 688, 10, true),
      item('', 0, 0, 10, true),
    ]);
    expect(text).toBe('Photosynthesis needs\nlight');
  });

  it('keeps superscripts on their line and starts a paragraph at a larger vertical gap', () => {
    const { text } = pdfPageText([
      item('Water boils at 100', 72, 700),
      item('o', 162, 704, 6),
      item('C at sea level.', 166, 700, 10, true),
      item('It freezes at 0 C.', 72, 688, 10, true),
      item('A new paragraph starts here.', 72, 660, 10, true),
      item('It has two lines.', 72, 648, 10, true),
    ]);
    expect(text).toBe('Water boils at 100oC at sea level.\nIt freezes at 0 C.\n\nA new paragraph starts here.\nIt has two lines.');
  });

  it('marks lines in a clearly larger font as # headings, merging a heading over two lines', () => {
    const body = Array.from({ length: 6 }, (_, i) =>
      item(`Body line number ${i} with enough words to dominate.`, 72, 640 - 12 * i, 10, true),
    );
    const { text } = pdfPageText([
      item('Chapter 3: The Structure', 72, 720, 20, true),
      item('of the Atom', 72, 698, 20, true),
      item('3.1 Electrons', 72, 670, 13, true),
      ...body,
    ]);
    const lines = text.split('\n');
    expect(lines[0]).toBe('# Chapter 3: The Structure of the Atom');
    expect(lines[2]).toBe('## 3.1 Electrons');
    expect(lines[4]).toBe('Body line number 0 with enough words to dominate.');
  });

  it('rejoins a word hyphenated across lines, but not a dash before a capital', () => {
    const { text } = pdfPageText([
      item('The mitochondrial mem-', 72, 700, 10, true),
      item('brane is folded. Vitamin-', 72, 688, 10, true),
      item('B12 matters.', 72, 676, 10, true),
    ]);
    expect(text).toBe('The mitochondrial membrane is folded. Vitamin-\nB12 matters.');
  });

  it('flags a page whose characters are mostly control codes as unreadable and drops its text', () => {
    const garbage = pdfPageText([item('\u0016\b\u001f\u0015\u0019\u0019\u0004\u0005\b', 72, 700), item('ab', 120, 700)]);
    expect(garbage).toStrictEqual({ text: '', rawChars: 11, unreadable: true });
    const fine = pdfPageText([item('Plain text\u0000 here', 72, 700)]);
    expect(fine).toStrictEqual({ text: 'Plain text here', rawChars: 14, unreadable: false });
  });
});
