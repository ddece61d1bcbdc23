import { describe, expect, it } from '@jest/globals';
import { COVERAGE_THRESHOLD, coverage, MISSING_COMMON_WEIGHT, MISSING_SPECIFIC_WEIGHT, passageTerms } from './coverage.js';
import { joinHyphenated } from './sentences.js';
import { uniqueTerms } from './terms.js';
import { COURSE, OFF_TOPIC, ON_TOPIC } from './testdata/course.js';

const PHYSICS = COURSE.filter((p) => p.documentId === 'doc-phys');

describe('coverage', () => {
  it('remembers a passage’s terms by its text: the same text gives the same terms, another text its own', () => {
    const passage = PHYSICS[0]!;
    const termsOf = (p: typeof passage) =>
      [...new Set(uniqueTerms(`${p.documentTitle}\n${p.heading ?? ''}\n${joinHyphenated(p.text)}`))].sort();
    const first = passageTerms(passage);
    expect([...first].sort()).toEqual(termsOf(passage));
    expect(passageTerms({ ...passage })).toBe(first);
    // The same chunk with its text rewritten (a document ingested again): its own terms, not the remembered ones.
    const rewritten = { ...passage, text: 'Photosynthesis happens in chloroplasts.' };
    expect([...passageTerms(rewritten)].sort()).toEqual(termsOf(rewritten));
    expect([...passageTerms(rewritten)].sort()).not.toEqual([...first].sort());
  });

  it('passes at least 90 % of the paraphrased on-topic questions of the fixture course', () => {
    const passed = ON_TOPIC.filter(({ question }) => coverage(question, COURSE).covered);
    expect(ON_TOPIC.length).toBeGreaterThanOrEqual(15);
    expect(passed.length / ON_TOPIC.length).toBeGreaterThanOrEqual(0.9);
  });

  it('rejects at least 90 % of the off-topic questions, though several share words with the course', () => {
    const rejected = OFF_TOPIC.filter((question) => !coverage(question, COURSE).covered);
    expect(OFF_TOPIC.length).toBeGreaterThanOrEqual(10);
    expect(rejected.length / OFF_TOPIC.length).toBeGreaterThanOrEqual(0.9);
  });

  it('finds its best passage in the document that answers each covered on-topic question', () => {
    const documentOf = (n: number | undefined) => COURSE.find((p) => p.n === n)?.documentId;
    for (const { question, passage } of ON_TOPIC) {
      const c = coverage(question, COURSE);
      if (c.covered) expect([question, documentOf(c.bestPassage)]).toEqual([question, documentOf(passage)]);
    }
  });

  it('rejects "who won the 2018 world cup" against physics passages that contain "world"', () => {
    expect(PHYSICS.some((p) => /\bworld\b/u.test(p.text))).toBe(true);
    const c = coverage('Who won the 2018 world cup?', PHYSICS);
    expect(c.covered).toBe(false);
    expect(c.matched).toEqual(['world']);
    expect(c.score).toBeGreaterThan(0);
    expect(c.score).toBeLessThan(COVERAGE_THRESHOLD);
  });

  it("needs two of the question's terms in the same passage: one shared word is a coincidence", () => {
    const c = coverage('What is the French word for apple?', COURSE);
    expect(c.matched).toEqual(['french']);
    expect(c.score).toBeGreaterThanOrEqual(COVERAGE_THRESHOLD);
    expect(c.covered).toBe(false);
    // A one-term question needs its one term.
    expect(coverage('What is inertia?', COURSE)).toMatchObject({ covered: true, score: 1, bestPassage: 8, matched: ['inertia'] });
  });

  it('reads words hyphenated across a PDF line break as one word', () => {
    // Passage 2 writes "or-\nganelles".
    expect(coverage('Which organelles carry out photosynthesis?', COURSE.slice(1, 2)).matched).toContain('organell');
  });

  it('exposes a score in 0..1, the weighted terms, the matched ones and the threshold', () => {
    const c = coverage('What did Einstein discover about gravity?', COURSE);
    expect(c.terms).toEqual([
      { term: 'einstein', weight: 1.5 },
      { term: 'discov', weight: 1 },
      { term: 'graviti', weight: 1 },
    ]);
    expect(c.matched).toEqual(['graviti']);
    // "gravity" found (1); "Einstein", a name the passage lacks, counts 2 against, "discover" 1.
    expect(c.score).toBeCloseTo(1 / 4, 10);
    expect(c.bestPassage).toBe(8);
    expect(c.threshold).toBe(COVERAGE_THRESHOLD);
    expect(c.covered).toBe(false);
  });

  it('matches derived forms the stemmer keeps apart and irregular plurals', () => {
    // "gravitational" → "gravit", "gravity" → "graviti"; "leaves" → "leaf".
    const c = coverage('How does gravitational pull keep a book on the table?', PHYSICS);
    expect(c.matched).toEqual(expect.arrayContaining(['gravit', 'book', 'tabl']));
    expect(c.covered).toBe(true);
    expect(coverage('Why do leaves look green?', COURSE).matched).toContain('leaf');
  });

  it('takes the threshold as an option', () => {
    // On topic (passage 5: "hunger spread in the cities"), but worded apart from the passage.
    const question = 'Why did people in the cities go hungry?';
    expect(coverage(question, COURSE)).toMatchObject({ covered: false, bestPassage: 5, matched: ['peopl', 'citi'] });
    expect(coverage(question, COURSE, { threshold: 0.35 })).toMatchObject({ covered: true, threshold: 0.35 });
  });

  it('is not covered with no content terms or no passages', () => {
    expect(coverage('Why is it so?', COURSE)).toMatchObject({ covered: false, score: 0, terms: [] });
    expect(coverage('What is inertia?', [])).toMatchObject({ covered: false, score: 0 });
    expect(coverage('What is inertia?', []).bestPassage).toBeUndefined();
  });

  it('scores a standalone follow-up on its own words, or on the carried words when it has none', () => {
    expect(coverage('What about Robespierre? (about: stormed Bastille)', COURSE)).toMatchObject({ covered: true, bestPassage: 7 });
    expect(coverage('And when did that happen? (about: stormed Bastille)', COURSE)).toMatchObject({ covered: true, bestPassage: 6 });
    expect(coverage('What about sourdough? (about: stormed Bastille)', COURSE).covered).toBe(false);
  });

  it('covers a question when one passage holds at least half of its weighted terms', () => {
    expect(COVERAGE_THRESHOLD).toBe(0.5);
    // "bee" and "wax" found (1 + 1); "make" missing (0.25), "where" is no term.
    const hive = passageOf('Worker bees have wax glands under the abdomen.');
    expect(coverage('Where do bees make wax?', [hive])).toMatchObject({ covered: true, matched: ['bee', 'wax'] });
  });

  it('counts a common word the passage lacks for little, and a name or number it lacks for much', () => {
    expect(MISSING_COMMON_WEIGHT).toBe(0.25);
    expect(MISSING_SPECIFIC_WEIGHT).toBe(2);
    const bees = passageOf('A worker bee makes wax with glands on the underside of her abdomen.');
    // A paraphrase: "part" and "body" are common words the passage does not use.
    const paraphrase = coverage("Which part of a worker's body makes wax?", [bees]);
    expect(paraphrase.matched).toEqual(['worker', 'make', 'wax']);
    expect(paraphrase.score).toBeCloseTo((0.5 + 0.5 + 1) / (0.5 + 0.5 + 1 + 0.25 + 0.25), 10);
    expect(paraphrase.covered).toBe(true);
    // A name the passage lacks: "Vespa" weighs 2 against the two words found.
    const named = coverage('How does Vespa make wax?', [bees]);
    expect(named.score).toBeCloseTo((0.5 + 1) / (0.5 + 1 + 2), 10);
    expect(named.covered).toBe(false);
  });

  it('wants a name the student wrote near the other words it matched, not anywhere in a long passage', () => {
    const page = passageOf(
      'Johannes Gutenberg, a goldsmith from the German city of Mainz, developed movable metal type. ' +
        'Each letter was cast separately in a hand mould. Gutenberg also prepared an oil-based ink. ' +
        'About 180 copies of his Bible were made, and 49 are known to survive today.',
    );
    // "Mainz" and "today" are both in the passage, three sentences apart: a coincidence.
    const population = coverage('What is the population of Mainz today?', [page]);
    expect(population.matched).toEqual(['mainz', 'today']);
    expect(population.score).toBeGreaterThanOrEqual(COVERAGE_THRESHOLD);
    expect(population.covered).toBe(false);
    // Within two sentences of each other, they are what the passage says.
    expect(coverage('Which German city was Gutenberg from?', [page]).covered).toBe(true);
    expect(coverage('What did the goldsmith from Mainz develop?', [page]).covered).toBe(true);
    // Without a name, the words may be spread over the passage (a document's topic words are).
    expect(coverage('How many copies of the letters survive?', [page]).covered).toBe(true);
    // The fixture's "What is the population of France today?" shares "population" and "France" with a long passage.
    expect(coverage('What is the population of France today?', COURSE).covered).toBe(false);
  });

  it('matches everyday synonyms and irregular verb forms', () => {
    const page = passageOf("The queen's pheromone stops workers from raising new queens. Pages were written on parchment.");
    expect(coverage('What prevents the workers from rearing new queens?', [page]).matched).toEqual([
      'prevent',
      'worker',
      'rear',
      'new',
      'queen',
    ]);
    expect(coverage('What did they write on?', [page]).matched).toEqual(['write']);
  });
});

function passageOf(text: string, n = 1) {
  return { n, chunkId: `c${n}`, documentId: 'd', documentTitle: 'Notes', pageStart: 1, pageEnd: 1, heading: null, text, score: 1 };
}
