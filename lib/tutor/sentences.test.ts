import { describe, expect, it } from '@jest/globals';
import { normalizeSentence, splitSentences } from './sentences.js';

const texts = (text: string) => splitSentences(text).map((s) => s.text);

describe('splitSentences', () => {
  it('splits prose at sentence ends and keeps offsets into the original text', () => {
    const text = 'Plants make sugar. They release oxygen!  Is that all? No.';
    const sentences = splitSentences(text);
    expect(sentences.map((s) => s.text)).toEqual(['Plants make sugar.', 'They release oxygen!', 'Is that all?', 'No.']);
    for (const s of sentences) expect(text.slice(s.start, s.end)).toBe(s.text);
  });

  it('does not split after abbreviations such as "e.g.", "i.e.", "Dr.", "Fig." and "vs."', () => {
    expect(
      texts('Some pigments, e.g. chlorophyll, absorb light. Dr. Smith agreed, i.e. fully. See Fig. 2 vs. Fig. 3 for details.'),
    ).toEqual(['Some pigments, e.g. chlorophyll, absorb light.', 'Dr. Smith agreed, i.e. fully.', 'See Fig. 2 vs. Fig. 3 for details.']);
  });

  it('does not split inside decimals, URLs or initials', () => {
    expect(texts('Pi is about 3.14 and g is 9.81 m/s². Visit www.example.org today. J. K. Rowling and I. Newton were English.')).toEqual([
      'Pi is about 3.14 and g is 9.81 m/s².',
      'Visit www.example.org today.',
      'J. K. Rowling and I. Newton were English.',
    ]);
  });

  it('splits after "no." when no number follows, but not in "No. 5" or "p. 12"', () => {
    expect(texts('He said no. Then he read No. 5 on p. 12 of the book.')).toEqual([
      'He said no.',
      'Then he read No. 5 on p. 12 of the book.',
    ]);
  });

  it('ends a sentence after closing quotes and brackets', () => {
    expect(texts('He shouted "Stop!" Everyone froze. The reaction ends (see below.) The next stage begins.')).toEqual([
      'He shouted "Stop!"',
      'Everyone froze.',
      'The reaction ends (see below.)',
      'The next stage begins.',
    ]);
  });

  it('joins PDF lines and words hyphenated across a line break, with offsets still covering the raw span', () => {
    const text = 'Photosynthesis takes place in or-\nganelles called chloro-\nplasts. Each leaf\ncell holds dozens of them.';
    const sentences = splitSentences(text);
    expect(sentences.map((s) => s.text)).toEqual([
      'Photosynthesis takes place in organelles called chloroplasts.',
      'Each leaf cell holds dozens of them.',
    ]);
    expect(text.slice(sentences[0]!.start, sentences[0]!.end)).toBe('Photosynthesis takes place in or-\nganelles called chloro-\nplasts.');
  });

  it('keeps a hyphen that is not at a line break, and one before a capital ("Estates-\\nGeneral")', () => {
    expect(texts('The light-dependent stage comes first.')).toEqual(['The light-dependent stage comes first.']);
    expect(texts('The Estates-\nGeneral met in May.')).toEqual(['The Estates-General met in May.']);
  });

  it('treats Markdown headings, paragraphs and list items as boundaries', () => {
    const sentences = splitSentences(
      "# Newton's laws\n\nThe first law is about inertia\n\nThree laws:\n- an object at rest stays at rest\n- force equals mass times acceleration\n1. Action and reaction are equal",
    );
    expect(sentences.map((s) => [s.text, s.heading])).toEqual([
      ["Newton's laws", true],
      ['The first law is about inertia', false],
      ['Three laws:', false],
      ['- an object at rest stays at rest', false],
      ['- force equals mass times acceleration', false],
      ['1. Action and reaction are equal', false],
    ]);
  });

  it('does not split a list number at the start of a line, nor an ellipsis before lower case', () => {
    expect(texts('1. Light is absorbed... then electrons move. Water is split.')).toEqual([
      '1. Light is absorbed... then electrons move.',
      'Water is split.',
    ]);
  });

  it('returns nothing for empty or punctuation-only text', () => {
    expect(splitSentences('')).toEqual([]);
    expect(splitSentences('  \n\n --- \n * * *')).toEqual([]);
  });
});

describe('normalizeSentence', () => {
  it('collapses whitespace, joins hyphenated line breaks and drops heading marks', () => {
    expect(normalizeSentence('## The  Calvin\ncycle')).toBe('The Calvin cycle');
    expect(normalizeSentence('car-\n  bon dioxide')).toBe('carbon dioxide');
  });
});
