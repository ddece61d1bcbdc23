import { describe, expect, it } from '@jest/globals';
import { checkMarkers, groundAnswer } from './citations.js';
import { splitSentences } from './sentences.js';
import { COURSE } from './testdata/course.js';

/** Passages 1..3 of the fixture, as a search would return them for a photosynthesis question. */
const PASSAGES = COURSE.slice(0, 3);
const sentencesOf = (n: number) => splitSentences(COURSE.find((p) => p.n === n)!.text).map((s) => s.text);

describe('groundAnswer', () => {
  it('drops markers that name no given passage, counts them, and keeps the valid ones', () => {
    const content =
      'Photosynthesis turns light energy into chemical energy [1]. Chlorophyll absorbs red and blue light [2][0]. ' +
      'Oxygen comes from splitting water [99]. The products are glucose and oxygen [abc].';
    const answer = groundAnswer(content, PASSAGES);
    expect(answer.content).toBe(
      'Photosynthesis turns light energy into chemical energy [1]. Chlorophyll absorbs red and blue light [2]. ' +
        'Oxygen comes from splitting water. The products are glucose and oxygen.',
    );
    expect(answer.droppedMarkers).toBe(3);
    expect(answer.citations.map((c) => c.index)).toEqual([1, 2]);
    expect(answer.grounded).toBe(true);
  });

  it('accepts [1][2] and [1, 2] forms, keeping a fully valid group as written', () => {
    const answer = groundAnswer('Plants release oxygen [1, 3]. It comes from water [3][1].', PASSAGES);
    expect(answer.content).toBe('Plants release oxygen [1, 3]. It comes from water [3][1].');
    expect(answer.droppedMarkers).toBe(0);
    expect(answer.citations.map((c) => c.index)).toEqual([1, 3]);
  });

  it('rewrites a group with an invalid or labelled item to the [a][b] form', () => {
    expect(checkMarkers('Light is absorbed [2, 7]. Water is split [Passage 3].', PASSAGES)).toMatchObject({
      content: 'Light is absorbed [2]. Water is split [3].',
      dropped: 1,
    });
    expect(checkMarkers('See [1-3] and [2–9].', PASSAGES)).toMatchObject({ content: 'See [1][2][3] and [2][3].', dropped: 6 });
  });

  it('leaves Markdown links and bracketed phrases alone', () => {
    const content = 'See [the glossary](https://example.org) and [a longer note here] [1].';
    const answer = groundAnswer(content, PASSAGES);
    expect(answer.content).toBe(content);
    expect(answer.droppedMarkers).toBe(0);
    expect(answer.citations.map((c) => c.index)).toEqual([1]);
  });

  it('is not grounded when no valid citation remains', () => {
    const answer = groundAnswer('The course says nothing on this [4]. Really [0].', PASSAGES);
    expect(answer).toEqual({ content: 'The course says nothing on this. Really.', citations: [], grounded: false, droppedMarkers: 2 });
    expect(groundAnswer('No markers at all.', PASSAGES)).toMatchObject({ grounded: false, citations: [], droppedMarkers: 0 });
  });

  it('quotes, for each passage cited, its sentence closest to the answer sentence carrying the marker', () => {
    const answer = groundAnswer(
      'Water molecules are split, and that is where the released oxygen comes from [3]. ' +
        'The pigment chlorophyll reflects green light, so leaves look green [2].',
      PASSAGES,
    );
    expect(answer.citations).toEqual([
      {
        index: 3,
        chunkId: COURSE[2]!.chunkId,
        documentId: 'doc-bio',
        pageStart: 14,
        pageEnd: 14,
        quote:
          'Water molecules are split to replace these electrons, and this splitting of water is the source of the oxygen that plants release.',
      },
      {
        index: 2,
        chunkId: COURSE[1]!.chunkId,
        documentId: 'doc-bio',
        pageStart: 13,
        pageEnd: 13,
        quote:
          'Chlorophyll, the green pigment embedded in the thylakoid membranes, absorbs mostly red and blue light and reflects green light, which is why leaves look green.',
      },
    ]);
  });

  it('gives a marker that opens a sentence to the sentence before it', () => {
    const answer = groundAnswer('Stomata are small pores on the underside of a leaf. [2] Plants release oxygen.', PASSAGES);
    expect(answer.citations[0]!.quote).toBe(
      'Carbon dioxide enters the leaf through small pores on its underside called stomata, which the plant can close to limit water loss.',
    );
  });

  it('quotes verbatim sentences of the cited passage, whatever the answer says', () => {
    const answers = [
      'Photosynthesis needs light [1]. Chloroplasts are in leaves [2]. ATP and NADPH power the next stage [3].',
      'Something unrelated to any passage [1][2][3].',
      'Sources: [1][3]',
    ];
    for (const content of answers) {
      const answer = groundAnswer(content, PASSAGES);
      expect(answer.citations.length).toBeGreaterThan(0);
      for (const c of answer.citations) expect(sentencesOf(c.index)).toContain(c.quote);
    }
  });

  it('checks markers against the passages given, whatever their numbers', () => {
    const some = [COURSE[4]!, COURSE[6]!].map((p, i) => ({ ...p, n: i + 1 }));
    const answer = groundAnswer('France was nearly bankrupt [1]. Robespierre led the Terror [2]. More [3].', some);
    expect(answer.citations.map((c) => [c.index, c.documentId, c.pageStart])).toEqual([
      [1, 'doc-hist', 41],
      [2, 'doc-hist', 44],
    ]);
    expect(answer.droppedMarkers).toBe(1);
  });
});
