import { describe, expect, it } from '@jest/globals';
import { answerOffline, BLANK, EXTRACTIVE_LEAD, extractiveAnswer, notCoveredAnswer, rankSentences, socraticHint } from './offline.js';
import { splitSentences } from './sentences.js';
import { cosine, terms } from './terms.js';
import { COURSE } from './testdata/course.js';
import type { GroundedAnswer, TutorPassage } from './types.js';

const passage = (n: number) => COURSE.find((p) => p.n === n)!;

/** The answer's body as [sentence, passage number] pairs, in order. */
function quoted(answer: GroundedAnswer): [string, number][] {
  expect(answer.content.startsWith(`${EXTRACTIVE_LEAD}\n\n`)).toBe(true);
  const body = answer.content.slice(EXTRACTIVE_LEAD.length).trim();
  const out: [string, number][] = [];
  for (const m of body.matchAll(/(.+?) \[(\d+)\](?: |$)/gsu)) out.push([m[1]!.trim(), Number(m[2])]);
  expect(out.map(([s, n]) => `${s} [${n}]`).join(' ')).toBe(body);
  return out;
}

describe('extractiveAnswer', () => {
  it('answers with the sentence holding the fact, cited with its passage and page', () => {
    const answer = extractiveAnswer('When did the crowd attack the Bastille?', COURSE);
    const [first] = quoted(answer);
    expect(first![0]).toContain('14 July 1789');
    expect(first![1]).toBe(6);
    expect(answer.citations[0]).toEqual({
      index: 6,
      chunkId: passage(6).chunkId,
      documentId: 'doc-hist',
      pageStart: 42,
      pageEnd: 42,
      quote: first![0],
    });
    expect(answer.grounded).toBe(true);
    expect(answer.droppedMarkers).toBe(0);
  });

  it('finds the fact when the question is worded differently from the passage', () => {
    const answer = extractiveAnswer('What are the tiny openings that let carbon dioxide into a leaf?', COURSE);
    const [first] = quoted(answer);
    expect(first).toEqual([expect.stringContaining('called stomata'), 2]);
    expect(answer.citations[0]).toMatchObject({ index: 2, pageStart: 13, pageEnd: 13 });
  });

  it('writes nothing but a lead-in and verbatim sentences of the cited passages, 1 to 4 of them', () => {
    for (const question of [
      'What does inertia mean?',
      'Why was France nearly broke before the revolution?',
      'If I push a heavy object and a light one equally hard, which accelerates more?',
      'What limits how fast a plant can photosynthesise?',
    ]) {
      const answer = extractiveAnswer(question, COURSE, { maxSentences: 4 });
      const sentences = quoted(answer);
      expect(sentences.length).toBeGreaterThanOrEqual(1);
      expect(sentences.length).toBeLessThanOrEqual(4);
      for (const [text, n] of sentences) {
        expect(splitSentences(passage(n).text).map((s) => s.text)).toContain(text);
        expect(answer.citations.map((c) => c.index)).toContain(n);
      }
      for (const c of answer.citations) expect(splitSentences(passage(c.index).text).map((s) => s.text)).toContain(c.quote);
    }
  });

  it('keeps to maxSentences, clamped to 1..4', () => {
    const question = 'What does Newton say about force, mass and acceleration?';
    expect(quoted(extractiveAnswer(question, COURSE, { maxSentences: 1 }))).toHaveLength(1);
    expect(quoted(extractiveAnswer(question, COURSE, { maxSentences: 0 }))).toHaveLength(1);
    expect(quoted(extractiveAnswer(question, COURSE, { maxSentences: 10 })).length).toBeLessThanOrEqual(4);
  });

  it('does not repeat itself when overlapping chunks hold the same sentences', () => {
    // Consecutive chunks overlap: the next chunk starts with the last sentences of the one before.
    const first = passage(8);
    const sentences = splitSentences(first.text).filter((s) => !s.heading);
    const overlap: TutorPassage = {
      ...first,
      n: 11,
      chunkId: 'doc-phys:overlap',
      text: `${sentences
        .slice(1)
        .map((s) => s.text)
        .join(' ')} Inertia also explains why passengers lurch forward when a bus brakes.`,
    };
    const answer = extractiveAnswer('What is inertia and why does it matter?', [first, overlap], { maxSentences: 4 });
    const texts = quoted(answer).map(([s]) => s);
    expect(new Set(texts).size).toBe(texts.length);
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) expect(cosine(terms(texts[i]!), terms(texts[j]!))).toBeLessThan(0.6);
    }
    expect(texts.length).toBeGreaterThanOrEqual(2);
  });

  it('says the material does not cover the question when no sentence shares a term with it', () => {
    expect(extractiveAnswer('How do I reset my password?', COURSE)).toEqual(notCoveredAnswer());
    expect(extractiveAnswer('What is inertia?', [])).toEqual(notCoveredAnswer());
  });
});

describe('notCoveredAnswer', () => {
  it('is ungrounded, cites nothing and says so plainly', () => {
    const answer = notCoveredAnswer();
    expect(answer.grounded).toBe(false);
    expect(answer.citations).toEqual([]);
    expect(answer.droppedMarkers).toBe(0);
    expect(answer.content).toMatch(/course material doesn't cover this question/u);
    expect(answer.content).not.toMatch(/\[\d+\]/u);
  });
});

describe('socraticHint', () => {
  const cases: [question: string, answerTerm: RegExp, page: string][] = [
    ['When did the crowd attack the Bastille?', /1789/u, 'page 42'],
    ['Who was in charge of the Committee of Public Safety during the Terror?', /robespierre|maximilien/iu, 'pages 44–45'],
    ['What are the tiny openings that let carbon dioxide into a leaf?', /stomata/iu, 'page 13'],
    ['Which enzyme fixes carbon dioxide?', /rubisco/iu, 'pages 15–16'],
    ['Who published the three laws of motion?', /newton|isaac/iu, 'page 9'],
    ['How many people were officially executed during the Terror?', /17,000/u, 'pages 44–45'],
  ];

  it.each(cases)('never gives the answer away: %s', (question, answerTerm, page) => {
    const hint = socraticHint(question, COURSE);
    // Nowhere in the hint: not in its text, not in its citations.
    expect(JSON.stringify(hint)).not.toMatch(answerTerm);
    expect(hint.content).toContain(BLANK);
    expect(hint.content).toContain(`Reread ${page}`);
    expect(hint.content.trim().endsWith('?')).toBe(true);
    expect(hint.grounded).toBe(true);
    expect(hint.citations).toHaveLength(1);
    // Not the full answer sentence either.
    const sentences = hint.citations.flatMap((c) => splitSentences(passage(c.index).text).map((s) => s.text));
    for (const sentence of sentences) expect(hint.content).not.toContain(sentence);
  });

  it('names the document and section to reread, and cites the passage', () => {
    const hint = socraticHint('When did the crowd attack the Bastille?', COURSE);
    expect(hint.content).toContain('Reread page 42 of "Europe 1750–1815"');
    expect(hint.content).toContain('[6]');
    expect(hint.citations[0]).toMatchObject({ index: 6, pageStart: 42, quote: expect.stringContaining(`14 July ${BLANK} a crowd`) });
  });

  it('leaves out a title or section that contains the answer term', () => {
    const titled = COURSE.map((p) => (p.n === 2 ? { ...p, documentTitle: 'Stomata and Gas Exchange', heading: 'How stomata work' } : p));
    const hint = socraticHint('What are the tiny openings that let carbon dioxide into a leaf?', titled);
    expect(JSON.stringify(hint)).not.toMatch(/stomata/iu);
    expect(hint.content).toContain('Reread page 13 of the document cited [2]');
  });

  it('says the material does not cover the question when nothing matches', () => {
    expect(socraticHint('How do I reset my password?', COURSE)).toEqual(notCoveredAnswer());
  });
});

describe('answerOffline', () => {
  it('answers a covered question and refuses an uncovered one without quoting anything', () => {
    const covered = answerOffline({ question: 'When did the crowd attack the Bastille?', passages: COURSE, mode: 'EXPLAIN' });
    expect(covered.coverage.covered).toBe(true);
    expect(covered.answer.citations[0]?.index).toBe(6);
    const refused = answerOffline({ question: 'Who won the 2018 world cup?', passages: COURSE, mode: 'EXPLAIN' });
    expect(refused.coverage.covered).toBe(false);
    expect(refused.answer).toEqual(notCoveredAnswer());
  });

  it('makes a follow-up standalone before answering it', () => {
    const turn = answerOffline({
      question: 'And when did that happen?',
      history: [
        { role: 'USER', content: 'Who stormed the Bastille?' },
        { role: 'ASSISTANT', content: 'From the course material: On 14 July 1789 a crowd in Paris stormed the Bastille. [6]' },
      ],
      passages: COURSE,
      mode: 'SOCRATIC',
    });
    expect(turn.question).toBe('And when did that happen? (about: stormed Bastille)');
    expect(turn.coverage.covered).toBe(true);
    expect(JSON.stringify(turn.answer)).not.toMatch(/1789/u);
    expect(turn.answer.citations[0]?.index).toBe(6);
  });
});

/** A passage of made-up text for the cases below. */
function passageOf(text: string, extra: Partial<TutorPassage> = {}): TutorPassage {
  return {
    n: 1,
    chunkId: 'c1',
    documentId: 'd',
    documentTitle: 'Notes',
    pageStart: 3,
    pageEnd: 3,
    heading: null,
    text,
    score: 1,
    ...extra,
  };
}

describe('extractiveAnswer, read in context', () => {
  it('quotes no heading or label that the PDF text does not mark as one', () => {
    const p = passageOf(
      'The allocator runs last.\n\n5.2 Register Allocation\n\nWe use a simple greedy register allocator. ' +
        'Figure 4. Register allocation for the sample.\n\nWhen no register is free, the allocator spills the oldest value.',
    );
    const texts = quoted(extractiveAnswer('How does the register allocator work?', [p], { maxSentences: 4 })).map(([t]) => t);
    expect(texts.length).toBeGreaterThan(0);
    for (const t of texts) expect(t).not.toMatch(/^(?:5\.2 Register Allocation|Figure 4\.)/u);
  });

  it('puts the sentence a pointing-back best sentence leans on before it', () => {
    const p = passageOf(
      'The suite has 26 short programs. This is in stark contrast to other benchmark suites used to evaluate servers. ' +
        'Many programs in those suites run for minutes.\n\nSome compilers are slow.',
    );
    const texts = quoted(extractiveAnswer('Which benchmark suites are used to evaluate servers?', [p])).map(([t]) => t);
    expect(texts[0]).toBe('The suite has 26 short programs.');
    expect(texts[1]).toMatch(/^This is in stark contrast/u);
  });

  it('follows the best sentence with the next one when it goes on with the same matter', () => {
    const question = 'Which value is selected for spilling when no register is free?';
    const p = passageOf(
      'If there are no free registers, a value is selected for spilling. We use a heuristic that selects the oldest value.\n\n' +
        'Spilling a register value is slow.',
    );
    // The distractor shares more of the question's words than the next sentence does.
    const ranked = rankSentences(question, [p]).map((s) => s.text);
    expect(ranked.indexOf('Spilling a register value is slow.')).toBeLessThan(
      ranked.indexOf('We use a heuristic that selects the oldest value.'),
    );
    expect(quoted(extractiveAnswer(question, [p], { maxSentences: 2 })).map(([t]) => t)).toEqual([
      'If there are no free registers, a value is selected for spilling.',
      'We use a heuristic that selects the oldest value.',
    ]);
    // With one sentence asked for, only the best one.
    expect(quoted(extractiveAnswer(question, [p], { maxSentences: 1 }))).toHaveLength(1);
  });

  it("ranks a follow-up's sentences on what it asks more than on the words carried from before", () => {
    const p = passageOf(
      'We evaluated our tracing compiler on a standard benchmark suite used by other authors. ' +
        'Tracing makes loops fast.\n\nThe suite consists of 26 short programs.',
    );
    const answer = extractiveAnswer('How many programs does it contain? (about: benchmark suite authors evaluate tracing)', [p], {
      maxSentences: 1,
    });
    expect(quoted(answer)[0]![0]).toBe('The suite consists of 26 short programs.');
  });

  it('takes no reference to a cited work, "(3)", for the number a "how many" question asks for', () => {
    const p = passageOf('The earlier suite (3) had loops.\n\nThe suite has twelve loops.');
    expect(quoted(extractiveAnswer('How many loops does the suite have?', [p], { maxSentences: 1 }))[0]![0]).toBe(
      'The suite has twelve loops.',
    );
  });
});

describe('socraticHint, choosing the word to blank', () => {
  it.each([
    [
      'a word named by "we call the “…”"',
      'Where does the compiler note that a variable held doubles?',
      'We note that the variable in question held doubles in an advisory data structure which we call the “oracle”.',
      /oracle/iu,
    ],
    [
      'a whole name, with its particles',
      'Who decoded the dance language of bees?',
      'The Austrian scientist Karl von Frisch decoded the dance language of bees in the 1940s.',
      /karl|frisch|\bvon\b/iu,
    ],
    [
      'a name in apposition after a comma',
      'Which random-program fuzz tester found bugs in the tracer?',
      "One tool that found bugs was Mozilla's fuzz tester, JSFUNFUZZ, which generates random programs by nesting random language elements.",
      /jsfunfuzz/iu,
    ],
    [
      'the name after "the city of"',
      'In which city did Gutenberg work?',
      'Johannes Gutenberg, a goldsmith from the German city of Mainz, developed movable type around 1450.',
      /mainz/iu,
    ],
  ])('blanks %s', (_, question, text, answerTerm) => {
    const hint = socraticHint(question, [passageOf(text)]);
    expect(hint.grounded).toBe(true);
    expect(hint.content).toContain(BLANK);
    expect(JSON.stringify(hint)).not.toMatch(answerTerm);
    expect(hint.content).toContain('Reread page 3');
  });
});
