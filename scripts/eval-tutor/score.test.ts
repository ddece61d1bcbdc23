import { describe, expect, it } from '@jest/globals';
import { GENERATED, HALF } from './documents.js';
import { QUESTIONS } from './questions.js';
import { mentionsPage, scoreAnswer, summarise, type AnswerView, type Result } from './score.js';

const answer = (over: Partial<AnswerView>): AnswerView => ({
  id: 'm',
  status: 'COMPLETE',
  mode: 'EXPLAIN',
  content: '',
  grounded: true,
  engine: 'OFFLINE',
  citations: [],
  conversation: { id: 'c' },
  ...over,
});
const cite = (pageStart: number, pageEnd = pageStart, quote = 'q') => ({ index: 1, pageStart, pageEnd, quote });

describe('the question set', () => {
  it('has enough questions of each kind, with what each kind needs', () => {
    const count = (kind: string) => QUESTIONS.filter((q) => q.kind === kind).length;
    expect(count('fact')).toBeGreaterThanOrEqual(30);
    expect(count('off-topic')).toBeGreaterThanOrEqual(10);
    expect(count('follow-up')).toBeGreaterThanOrEqual(6);
    expect(count('socratic')).toBeGreaterThanOrEqual(10);
    expect(new Set(QUESTIONS.map((q) => q.id)).size).toBe(QUESTIONS.length);
    for (const q of QUESTIONS) {
      expect(HALF[q.material]).toBeDefined();
      if (q.kind === 'fact' || q.kind === 'follow-up')
        expect([q.id, (q.anyOf?.length ?? 0) + (q.allOf?.length ?? 0)]).not.toEqual([q.id, 0]);
      if (q.kind !== 'off-topic') expect([q.id, q.pages?.length ?? 0]).not.toEqual([q.id, 0]);
      if (q.kind === 'follow-up') expect([q.id, typeof q.previous]).toEqual([q.id, 'string']);
      if (q.kind === 'socratic') expect([q.id, typeof q.hidden]).toEqual([q.id, 'string']);
    }
  });

  it("finds each expected answer of the generated documents on one of its question's pages", () => {
    for (const q of QUESTIONS) {
      const doc = GENERATED.find((d) => d.key === q.material);
      if (!doc || q.kind === 'off-topic') continue;
      const onPages = (q.pages ?? []).map((p) => doc.pages[p - 1]!.join(' ').toLowerCase());
      const found = (k: string) => onPages.some((text) => text.includes(k.toLowerCase()));
      for (const k of q.allOf ?? []) expect([q.id, k, found(k)]).toEqual([q.id, k, true]);
      if (q.anyOf) expect([q.id, q.anyOf.some(found)]).toEqual([q.id, true]);
      if (q.hidden) expect([q.id, q.hidden, found(q.hidden)]).toEqual([q.id, q.hidden, true]);
    }
  });
});

describe('scoreAnswer', () => {
  const fact = QUESTIONS.find((q) => q.id === 'bee-f1')!;
  const socratic = QUESTIONS.find((q) => q.id === 'bee-s2')!;
  const offTopic = QUESTIONS.find((q) => q.id === 'bee-o1')!;

  it('passes a fact answered with its keyword and a citation on its page', () => {
    expect(scoreAnswer(fact, answer({ content: 'It can hold around 50,000 bees. [1]', citations: [cite(1)] }))).toEqual({
      pass: true,
      reasons: [],
    });
    // A citation spanning the page counts.
    expect(scoreAnswer(fact, answer({ content: 'around 50,000', citations: [cite(0, 2)] })).pass).toBe(true);
  });

  it('says why a fact fails', () => {
    expect(scoreAnswer(fact, answer({ content: 'Many bees.', citations: [cite(2)] })).reasons).toEqual([
      'none of "50,000"',
      'no citation on page 1',
    ]);
    expect(
      scoreAnswer(fact, answer({ content: 'around 50,000', grounded: false, status: 'FAILED', citations: [cite(1)] })).reasons,
    ).toEqual(['status FAILED', 'not grounded']);
  });

  it('passes an off-topic question only when declined without citations', () => {
    expect(scoreAnswer(offTopic, answer({ grounded: false })).pass).toBe(true);
    expect(scoreAnswer(offTopic, answer({ grounded: true, citations: [cite(1)] })).reasons).toEqual([
      'answered (grounded)',
      '1 citation(s)',
    ]);
  });

  it('passes a Socratic hint that points to the page without the answer, in its text or its quotes', () => {
    const hint = 'Reread page 1 of "Honeybees" [1]. It says: "The males are called _____."';
    expect(scoreAnswer(socratic, answer({ content: hint, citations: [cite(1, 1, 'The males are called _____.')] })).pass).toBe(true);
    expect(scoreAnswer(socratic, answer({ content: hint, citations: [cite(1, 1, 'The males are called drones.')] })).reasons).toEqual([
      'a quote gives away "drone"',
    ]);
    expect(scoreAnswer(socratic, answer({ content: `${hint} Drones!`, citations: [cite(1)] })).reasons).toEqual(['gives away "drone"']);
    expect(scoreAnswer(socratic, answer({ content: 'Reread page 2.', citations: [cite(2)] })).reasons).toEqual([
      'no citation on page 1',
      'does not say "page 1"',
    ]);
  });

  it('reads "page N" and "pages N–M"', () => {
    expect(mentionsPage('Reread page 3 of it', [3])).toBe(true);
    expect(mentionsPage('Reread pages 2–4 of it', [3])).toBe(true);
    expect(mentionsPage('Reread page 13', [3])).toBe(false);
  });
});

describe('summarise', () => {
  it('gives the share of each kind per half and says whether every target is met', () => {
    const q = QUESTIONS.find((x) => x.id === 'bee-o1')!;
    const r = (pass: boolean, half: Result['half']): Result => ({
      question: q,
      half,
      answer: answer({}),
      score: { pass, reasons: [] },
      latencyMs: 10,
    });
    const s = summarise([r(true, 'tuning'), r(true, 'held-out'), r(false, 'held-out'), r(true, 'held-out')]);
    expect(s.shares['off-topic'].tuning).toEqual({ passed: 1, total: 1, share: 1 });
    expect(s.shares['off-topic']['held-out']).toEqual({ passed: 2, total: 3, share: 2 / 3 });
    expect(s.shares['off-topic'].all.share).toBe(0.75);
    expect(s.shares.fact.all.total).toBe(0);
    expect(s.met).toBe(false);
    expect(s.latencyP50Ms).toBe(10);
  });
});
