import { describe, expect, it } from '@jest/globals';
import {
  COMMON_WEIGHT,
  cosine,
  hasTerm,
  questionTerms,
  rarity,
  sameTerm,
  SPECIFIC_WEIGHT,
  specificTerms,
  SYNONYM_GROUPS,
  terms,
} from './terms.js';

describe('terms', () => {
  it("are retrieval's terms (stop words dropped, Snowball stems), irregular forms mapped to their base first", () => {
    expect(terms('The leaves of the plants')).toEqual(['leaf', 'plant']);
    expect(terms('Gases went through the stomata')).toEqual(['gas', 'go', 'stoma']);
  });

  it('map irregular past tenses and participles to their base', () => {
    expect(terms('She wrote what was written; it became known')).toEqual(['write', 'write', 'becom', 'know']);
    // Forms that are also other words are left alone: "found" a colony, the "left" ventricle.
    expect(terms('to found a colony in the left ventricle')).toEqual(['found', 'coloni', 'left', 'ventricl']);
  });

  it('read "lives" both as the noun and as the verb', () => {
    expect(terms('A summer worker lives five weeks')).toEqual(['summer', 'worker', 'life', 'live', 'five', 'week']);
    expect(hasTerm(new Set(terms('their lives')), 'live')).toBe(true);
    expect(hasTerm(new Set(terms('their lives')), 'life')).toBe(true);
  });

  it('drop the words of a question that only ask for a kind of answer', () => {
    expect(questionTerms('Can you explain what photosynthesis means, with an example?')).toEqual(['photosynthesi']);
    expect(questionTerms('Why is it important?')).toEqual([]);
  });
});

describe('rarity', () => {
  it('weighs names and numbers the student wrote above ordinary words, and common words below', () => {
    const question = 'Who won the 2018 world cup in Russia?';
    const specific = specificTerms(question);
    expect([...specific].sort()).toEqual(['2018', 'russia']);
    expect(rarity('2018', specific)).toBe(SPECIFIC_WEIGHT);
    expect(rarity('world', specific)).toBe(COMMON_WEIGHT);
    expect(rarity('cup', specific)).toBe(COMMON_WEIGHT);
    expect(rarity('tournament', specific)).toBe(1);
  });

  it('does not take a capital that opens a sentence for a name', () => {
    expect([...specificTerms('Photosynthesis needs light. Where does Newton come in?')]).toEqual(['newton']);
  });
});

describe('sameTerm', () => {
  it('matches equal stems, and a stem of 5+ letters beginning the other', () => {
    expect(sameTerm('graviti', 'gravit')).toBe(true);
    expect(sameTerm('revolut', 'revolutionari')).toBe(true);
    expect(sameTerm('king', 'kingdom')).toBe(false);
    expect(sameTerm('car', 'care')).toBe(false);
    expect(hasTerm(new Set(['photosynthet', 'light']), 'photosynthesi')).toBe(false);
    expect(hasTerm(new Set(['gravit', 'light']), 'graviti')).toBe(true);
  });
});

describe('synonyms', () => {
  it('are the same term, both ways, within a group only', () => {
    expect(sameTerm('contain', 'consist')).toBe(true);
    expect(sameTerm('consist', 'contain')).toBe(true);
    expect(sameTerm(terms('prevents')[0]!, terms('stops')[0]!)).toBe(true);
    expect(sameTerm('contain', 'stop')).toBe(false);
    expect(hasTerm(new Set(terms('Each colony raises new queens')), terms('rear')[0]!)).toBe(true);
    // Every group has at least two distinct terms once stemmed.
    for (const group of SYNONYM_GROUPS) expect(group.length).toBeGreaterThanOrEqual(2);
  });
});

describe('cosine', () => {
  it('is 1 for the same terms, 0 for disjoint ones or an empty side', () => {
    expect(cosine(['a', 'b'], ['b', 'a'])).toBeCloseTo(1, 12);
    expect(cosine(['a'], ['b'])).toBe(0);
    expect(cosine([], ['a'])).toBe(0);
    expect(cosine(['a', 'a', 'b'], ['a'])).toBeCloseTo(2 / Math.sqrt(5), 12);
  });
});
