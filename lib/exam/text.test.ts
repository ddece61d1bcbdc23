import { describe, expect, it } from '@jest/globals';
import { parseXml } from './fixtures/xml-check.js';
import { createRandom, mulberry32 } from './random.js';
import { extractTerms, knownNames } from './terms.js';
import { containsTerm, editDistance, locateSentence, pageAt, parseNumber, sentenceSkipReason, splitSentences } from './text.js';

describe('splitSentences', () => {
  it('keeps exact offsets and splits at sentence ends, headings and paragraphs', () => {
    const text =
      '# Title\n\nDr. Smith met Mr. Jones in the U.S. in 1999. He said "hello." Then J. R. Tolkien left!\nA wrapped\nline ends here.\n\nNew paragraph: 9.8 m/s is fast? Yes.';
    const spans = splitSentences(text);
    for (const s of spans) expect(text.slice(s.start, s.end)).toBe(s.text);
    expect(spans.map((s) => s.text)).toEqual([
      '# Title',
      'Dr. Smith met Mr. Jones in the U.S. in 1999.',
      'He said "hello."',
      'Then J. R. Tolkien left!',
      'A wrapped\nline ends here.',
      'New paragraph: 9.8 m/s is fast?',
      'Yes.',
    ]);
    expect(spans[0]!.heading).toBe(true);
  });

  it('cuts title-like lines and list items from the text that follows', () => {
    const spans = splitSentences('Table 2. Population of Paris\n1789 640000 1801 548000\n- first item here.\n- second item here.');
    expect(spans.map((s) => s.text)).toEqual([
      'Table 2.',
      'Population of Paris',
      '1789 640000 1801 548000',
      '- first item here.',
      '- second item here.',
    ]);
  });
});

describe('sentenceSkipReason', () => {
  it.each([
    ['# The French Revolution', 'heading'],
    ['Chapter 3 Forces and motion in everyday life.', 'heading'],
    ['Why did the crowd attack the Bastille?', 'question'],
    ['See also: https://en.wikipedia.org/wiki/Napoleonic_Code', 'reference'],
    ['Halliday, D. (2011). Fundamentals of Physics, 9th ed., pp. 120–135.', 'reference'],
    ['Smith et al. reported the same effect in their study.', 'reference'],
    ['1789 640000 1801 548000 1817 713966 1831 785862', 'numeric'],
    ['Summary and key terms', 'fragment'],
    ['and then the king left Paris for good.', 'fragment'],
    ['Paris fell (after a long siege in the winter.', 'fragment'],
    ['Napoleon lost.', 'too-short'],
    [`The ${'very '.repeat(40)}long sentence.`, 'too-long'],
    ['He crowned himself Emperor of the French in 1804 at Notre-Dame.', 'context-dependent'],
    ['Their model relied on X-ray images taken by Rosalind Franklin.', 'context-dependent'],
  ])('%s → %s', (sentence, reason) => {
    expect(sentenceSkipReason(sentence)).toBe(reason);
  });

  it('accepts an informative sentence', () => {
    expect(sentenceSkipReason('The storming of the Bastille took place on 14 July 1789 in Paris.')).toBeNull();
  });
});

describe('helpers', () => {
  it('containsTerm compares stems, case and thousands separators', () => {
    expect(containsTerm('Chloroplasts carry out photosynthesis in plant cells.', 'plant cell')).toBe(true);
    expect(containsTerm('About 17,000 people died.', '17000')).toBe(true);
    expect(containsTerm('The cell is the unit of life.', 'cellular')).toBe(false);
    expect(containsTerm('He went to the of.', 'the')).toBe(true);
  });

  it('parseNumber reads plain numbers only', () => {
    expect(parseNumber('1,000')).toBe(1000);
    expect(parseNumber(' 9.8 ')).toBe(9.8);
    expect(parseNumber('150 million')).toBe(150_000_000);
    expect(parseNumber('.5')).toBe(0.5);
    expect(parseNumber('1,00')).toBeNull();
    expect(parseNumber('9.8 m')).toBeNull();
    expect(parseNumber('Paris')).toBeNull();
  });

  it('editDistance stops early past its bound', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('kitten', 'sitting', 1)).toBe(2);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('pageAt and locateSentence', () => {
    const passage = {
      chunkId: 'c',
      documentId: 'd',
      documentTitle: 't',
      pageStart: 3,
      pageEnd: 5,
      text: 'One. Two. Three.',
      pageBreaks: [5, 10],
    };
    expect([0, 5, 9, 10, 15].map((o) => pageAt(passage, o))).toEqual([3, 4, 4, 5, 5]);
    expect(pageAt({ ...passage, pageBreaks: undefined }, 12)).toBe(3);
    expect(locateSentence('A  first\nsentence. B.', 'A first sentence.')).toEqual({ start: 0, end: 18 });
    expect(locateSentence('A.', 'B.')).toBeNull();
  });

  it('mulberry32 is deterministic and uniform enough', () => {
    const a = mulberry32(1);
    const b = mulberry32(1);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(Math.abs(xs.reduce((s, x) => s + x, 0) / 1000 - 0.5)).toBeLessThan(0.05);
    const r = createRandom(9);
    expect(r.shuffle([1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(createRandom(9).shuffle([1, 2, 3, 4, 5])).toEqual(createRandom(9).shuffle([1, 2, 3, 4, 5]));
  });
});

describe('extractTerms', () => {
  const kinds = (s: string, known = new Map()) => extractTerms(s, known).map((t) => `${t.kind}:${t.text}`);

  it('finds years, numbers, people, places, organisations and events', () => {
    expect(kinds('The French Revolution began in 1789 with the meeting of the Estates-General at Versailles.')).toEqual([
      'EVENT:French Revolution',
      'YEAR:1789',
      'NOUN_PHRASE:meeting',
      'ORGANIZATION:Estates-General',
      'PLACE:Versailles',
    ]);
    expect(kinds('Maximilien Robespierre led the Committee of Public Safety during the Reign of Terror.')).toEqual([
      'PERSON:Maximilien Robespierre',
      'ORGANIZATION:Committee of Public Safety',
      'EVENT:Reign of Terror',
    ]);
    expect(kinds('The Earth orbits the Sun at an average distance of about 150 million kilometres.')).toContain('NUMBER:150 million');
    expect(kinds('A human body cell contains 46 chromosomes arranged in 23 pairs.')).toEqual(
      expect.arrayContaining(['NUMBER:46', 'NUMBER:23']),
    );
  });

  it('skips days of the month and table numbers, and tells units from years', () => {
    expect(kinds('On 17 June 1789 the Third Estate declared itself the National Assembly.')).not.toContain('NUMBER:17');
    expect(kinds('The column was 1500 metres high when it was measured.')).toContain('NUMBER:1500');
    expect(kinds('As Table 2 shows, the city grew after 1801 again.')).toEqual(expect.arrayContaining(['YEAR:1801']));
    expect(kinds('As Table 2 shows, the city grew after 1801 again.')).not.toContain('NUMBER:2');
  });

  it('marks definitional subjects as concepts', () => {
    expect(kinds('Osmosis is the diffusion of water across a selectively permeable membrane.')[0]).toBe('CONCEPT:Osmosis');
    expect(kinds('The monarchy was abolished in September 1792.')[0]).toBe('NOUN_PHRASE:monarchy');
  });

  it('knows the course’s people at the start of a sentence', () => {
    const known = knownNames(extractTerms('Maximilien Robespierre led the Committee of Public Safety.'));
    expect(kinds('Robespierre was arrested and executed in July 1794.', known)[0]).toBe('PERSON:Robespierre');
  });
});

describe('the test XML checker', () => {
  it.each([
    ['<a><b></a></b>', /closes/],
    ['<a>x & y</a>', /bare "&"/],
    ['<a>&nbsp;</a>', /unknown entity/],
    ['<a x="1" x="2"/>', /duplicate attribute/],
    ['<a x="<"/>', /"<" in attribute/],
    ['<a><!-- a -- b --></a>', /"--" inside a comment/],
    ['<a><![CDATA[x</a>', /unclosed CDATA/],
    ['<a>x ]]> y</a>', /"]]>" in text/],
    ['<a/><b/>', /second root/],
    ['<a>', /unclosed <a>/],
    ['text<a/>', /text outside/],
  ])('rejects %s', (doc, error) => {
    expect(() => parseXml(doc)).toThrow(error);
  });

  it('accepts and resolves a well-formed document', () => {
    const el = parseXml('<?xml version="1.0"?>\n<!-- c --><a k=\'v &amp; w\'>x &lt; y <![CDATA[<raw>]]]]><![CDATA[>]]><b/></a>\n');
    expect(el).toEqual({
      name: 'a',
      attrs: { k: 'v & w' },
      text: 'x < y <raw>]]>',
      children: [{ name: 'b', attrs: {}, children: [], text: '' }],
    });
  });
});
