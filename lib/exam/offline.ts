/**
 * The offline exam generator (no model): informative sentences spread over the
 * material, their key terms, and questions built from them — fill in the blank,
 * multiple choice with same-kind distractors, true/false (the sentence, or a
 * copy with one term swapped for a same-kind term), short answer with a
 * reference answer and key terms. Every question is validated before it is
 * kept; a generation that cannot reach the count returns what it made and the
 * rejections by rule, never padding.
 *
 * Selection. Usable sentences (see text.ts `sentenceSkipReason`) are ranked by
 * informativeness plus a seeded jitter, minus a penalty for passages and pages
 * already used (1.5 per question from the same passage, 0.8 from the same
 * page), so an exam spreads over the material. A sentence gives at most one
 * question. Types follow a seeded round-robin over the requested types; a type
 * the material cannot serve any more yields its slots to the others.
 *
 * Balance. After selection, MC keys get positions by blocks of four (each block
 * a seeded permutation of A–D, so no position exceeds ceil(n/4)); numeric options
 * are in ascending order with distractors chosen below/above the key to put it
 * at its position when the pool allows. TF truth values are half true, half
 * false (the odd one by coin), which statements are false chosen by the seed.
 */
import { ENGLISH_STOP_WORDS } from '../search/lexical.js';
import { analyseCourse, type CourseAnalysis, type CourseSentence } from './course.js';
import { distractorPool, pickDistinct, type Distractor } from './distractors.js';
import { createRandom, type Random } from './random.js';
import { occurrences, startsWithVerb, type KeyTerm, type TermKind } from './terms.js';
import { BLANK, collapse, containsTerm, exactPages, plainWords, TF_PREFIX } from './text.js';
import {
  QUESTION_TYPES,
  type Difficulty,
  type ExamQuestionDraft,
  type GenerateOptions,
  type GenerateResult,
  type QuestionSource,
  type QuestionType,
  type RejectionRule,
} from './types.js';
import { nearDuplicate, validateQuestion } from './validate.js';

export const MAX_QUESTIONS = 50;

interface Built {
  draft: ExamQuestionDraft;
  sentence: CourseSentence;
  /** TRUE_FALSE: the false variant (the true one is `draft`). */
  falseDraft?: ExamQuestionDraft;
  /** MULTIPLE_CHOICE with a numeric key: the key and the ranked pool, to arrange options in order. */
  numeric?: { key: string; value: number; pool: Distractor[] };
}

type Attempt = { built: Built } | { failed: RejectionRule };

interface Context {
  course: CourseAnalysis;
  difficulty: Difficulty;
  rng: Random;
}

function sourceOf(s: CourseSentence): QuestionSource {
  const p = s.passage;
  return {
    chunkId: p.chunkId,
    documentId: p.documentId,
    documentTitle: p.documentTitle,
    pageStart: p.pageStart,
    pageEnd: p.pageEnd,
    page: s.page,
    pageExact: exactPages(p),
    sentence: s.text,
  };
}

/** "Title, p. 3" (or "pp. 3–4" when the sentence's page is not known exactly). */
export function citation(source: QuestionSource): string {
  const exact = source.pageExact ?? (source.pageStart === source.pageEnd || source.page !== source.pageStart);
  return exact ? `${source.documentTitle}, p. ${source.page}` : `${source.documentTitle}, pp. ${source.pageStart}–${source.pageEnd}`;
}

const quote = (s: string) => `\u201c${collapse(s)}\u201d`;

/** The sentence with the key replaced by a blank; "a"/"an" before the blank becomes "a(n)". */
function blankOut(sentence: string, key: KeyTerm, blank = BLANK): string {
  let before = sentence.slice(0, key.start);
  before = before.replace(/\b([Aa])n?(\s+)$/, (_, a: string, sp: string) => `${a}(n)${sp}`);
  return collapse(before + blank + sentence.slice(key.end));
}

/** The sentence with the key replaced by another term (capitalised at the start). */
function substitute(sentence: string, key: KeyTerm, replacement: string): string {
  const text = key.start === 0 ? replacement[0]!.toUpperCase() + replacement.slice(1) : replacement;
  return collapse(sentence.slice(0, key.start) + text + sentence.slice(key.end));
}

function kindFactor(kind: TermKind, difficulty: Difficulty): number {
  if (difficulty === 'EASY')
    return ['YEAR', 'PERSON', 'PLACE', 'EVENT', 'ORGANIZATION'].includes(kind) ? 1.2 : kind === 'NOUN_PHRASE' ? 0.7 : 1;
  if (difficulty === 'HARD')
    return kind === 'CONCEPT' || kind === 'NOUN_PHRASE' ? 1.2 : kind === 'NUMBER' ? 1.1 : kind === 'YEAR' ? 0.9 : 1;
  return 1;
}

/** Terms of a sentence usable as a key, best first (occurring once, at most six words). */
function keyCandidates(s: CourseSentence, ctx: Context): KeyTerm[] {
  return s.terms
    .filter((t) => t.words <= 6 && occurrences(s.text, t.text) === 1)
    .map((t) => ({ t, w: t.weight * kindFactor(t.kind, ctx.difficulty) + ctx.rng.next() * 0.3 }))
    .sort((a, b) => b.w - a.w)
    .map(({ t }) => t);
}

function acceptedForms(key: KeyTerm): string[] {
  const out: string[] = [];
  if (key.kind === 'PERSON' && key.words >= 2) {
    const last = key.text.split(/\s+/).pop()!;
    if (!/^[IVXLC]+$/.test(last)) out.push(last);
  }
  if (key.grouping) out.push(key.text.replace(/,/g, ''));
  if (key.value !== undefined && key.scale) out.push(String(key.value));
  return out.map(collapse).filter((f) => f !== collapse(key.text));
}

function buildFillIn(s: CourseSentence, key: KeyTerm): Built {
  const source = sourceOf(s);
  const accepted = acceptedForms(key);
  return {
    sentence: s,
    draft: {
      type: 'FILL_IN_THE_BLANK',
      stem: blankOut(s.text, key),
      answerText: collapse(key.text),
      ...(accepted.length ? { acceptedAnswers: accepted } : {}),
      explanation: `The missing term is ${quote(key.text)}. Source (${citation(source)}): ${quote(s.text)}`,
      source,
    },
  };
}

function mcStem(s: CourseSentence, key: KeyTerm): string {
  if (key.kind === 'PERSON' && key.start === 0) {
    const rest = s.text.slice(key.end);
    if (/^\s/.test(rest) && startsWithVerb(rest)) return collapse(`Who${rest}`).replace(/[.!]+$/, '?');
  }
  return blankOut(s.text, key);
}

function buildMultipleChoice(s: CourseSentence, key: KeyTerm, ctx: Context): Attempt {
  const pool = distractorPool({ course: ctx.course, sentence: s, key, difficulty: ctx.difficulty, rng: ctx.rng });
  const picks = pickDistinct(pool, 3, key.kind === 'PERSON');
  if (picks.length < 3) return { failed: 'no-distractors' };
  const source = sourceOf(s);
  const draft: ExamQuestionDraft = {
    type: 'MULTIPLE_CHOICE',
    stem: mcStem(s, key),
    options: [collapse(key.display), ...picks.map((d) => collapse(d.text))],
    answerIndex: 0,
    explanation: `The answer is ${quote(key.display)}. Source (${citation(source)}): ${quote(s.text)}`,
    source,
  };
  const numeric = key.value !== undefined ? { key: collapse(key.display), value: key.value, pool } : undefined;
  return { built: { draft, sentence: s, ...(numeric ? { numeric } : {}) } };
}

function buildTrueFalse(s: CourseSentence, key: KeyTerm, ctx: Context): Attempt {
  const pool = distractorPool({ course: ctx.course, sentence: s, key, difficulty: ctx.difficulty, rng: ctx.rng });
  const swap = pool[0];
  if (!swap) return { failed: 'no-distractors' };
  const source = sourceOf(s);
  const statement = collapse(s.text);
  return {
    built: {
      sentence: s,
      draft: {
        type: 'TRUE_FALSE',
        stem: TF_PREFIX + statement,
        answerBool: true,
        explanation: `True. Source (${citation(source)}): ${quote(s.text)}`,
        source,
      },
      falseDraft: {
        type: 'TRUE_FALSE',
        stem: TF_PREFIX + substitute(s.text, key, swap.text),
        answerBool: false,
        explanation: `False: the source says ${quote(key.text)}, not ${quote(swap.text)}. Source (${citation(source)}): ${quote(s.text)}`,
        source,
      },
    },
  };
}

const SAY_VERBS: Record<string, [string, string]> = {
  states: ['does', 'state'],
  stated: ['did', 'state'],
  shows: ['does', 'show'],
  showed: ['did', 'show'],
  says: ['does', 'say'],
  said: ['did', 'say'],
  holds: ['does', 'hold'],
  held: ['did', 'hold'],
  proposes: ['does', 'propose'],
  proposed: ['did', 'propose'],
  finds: ['does', 'find'],
  found: ['did', 'find'],
  argues: ['does', 'argue'],
  argued: ['did', 'argue'],
  adds: ['does', 'add'],
  added: ['did', 'add'],
  demonstrated: ['did', 'demonstrate'],
  discovered: ['did', 'discover'],
};

/** Words never worth a key term on their own. */
const WEAK_WORDS = new Set(
  'cannot could would should might shall which whose while where there their these those about after before being other every usually often always never equally'.split(
    ' ',
  ),
);

const lowerArticle = (s: string) => s.replace(/^(The|A|An)\b/, (m) => m.toLowerCase());

/** A short-answer stem and the part of the sentence its key terms come from. */
function shortAnswerFrame(s: CourseSentence): { stem: string; from: number } | null {
  const text = collapse(s.text);
  const sayRe = new RegExp(`^(.+?)\\s+(${Object.keys(SAY_VERBS).join('|')})\\s+(in \\d{4}\\s+)?that\\s+`);
  const say = sayRe.exec(text);
  if (say) {
    const [aux, verb] = SAY_VERBS[say[2]!]!;
    const when = say[3] ? ` ${say[3].trim()}` : '';
    return { stem: `What ${aux} ${lowerArticle(say[1]!)} ${verb}${when}?`, from: say[0].length };
  }
  const first = s.terms[0];
  if (!first) return null;
  const lead = s.text.slice(0, first.start);
  if (!/^(?:(?:the|a|an)\s+)?$/i.test(lead)) return null;
  const after = s.text.slice(first.end);
  const copula = /^\s+(is|are|was|were)\s+(?=(a|an|the|one|made|built|composed|measured|\w+))/.exec(after);
  if (copula && (first.definitional || (/^(a|an|the)$/.test(copula[2] ?? '') && first.kind !== 'NOUN_PHRASE'))) {
    const subject = lowerArticle(s.text.slice(0, first.end));
    const subjectText = first.start === 0 && first.kind !== 'PERSON' && !/^[\p{Lu}\d]{2,}/u.test(subject) ? first.display : subject;
    return { stem: `What ${copula[1]} ${subjectText}?`, from: first.end + copula[0].length };
  }
  if (first.kind === 'PERSON' && first.start === 0 && startsWithVerb(after)) {
    return { stem: `What is ${first.text} known for?`, from: first.end };
  }
  // "The storming of the Bastille ..." → about "the storming of the Bastille".
  let end = first.end;
  const next = s.terms[1];
  if (next && /^\s+of\s+(?:the\s+)?$/i.test(s.text.slice(first.end, next.start))) end = next.end;
  if (first.kind === 'YEAR' || first.kind === 'NUMBER') return null;
  if (first.kind === 'NOUN_PHRASE' && end === first.end && first.words === 1) return null;
  let subject = lowerArticle(collapse(s.text.slice(0, end)));
  // A common noun phrase at the sentence start loses its capital ("Atmospheric pressure" → "atmospheric pressure").
  if (first.start === 0 && (first.kind === 'NOUN_PHRASE' || first.kind === 'CONCEPT') && !/^[\p{Lu}\d]{2,}/u.test(subject))
    subject = subject[0]!.toLowerCase() + subject.slice(1);
  return { stem: `What does the course say about ${subject}?`, from: end };
}

function buildShortAnswer(s: CourseSentence, ctx: Context): Attempt {
  const frame = shortAnswerFrame(s);
  if (!frame) return { failed: 'no-key-term' };
  const max = ctx.difficulty === 'EASY' ? 2 : ctx.difficulty === 'HARD' ? 4 : 3;
  const collapsed = collapse(s.text);
  const rest = collapsed.slice(frame.from);
  const keyTerms: string[] = [];
  for (const t of [...s.terms].sort((a, b) => b.weight - a.weight)) {
    if (keyTerms.length >= max) break;
    if (!containsTerm(rest, t.text) || containsTerm(frame.stem, t.text)) continue;
    if (keyTerms.some((k) => containsTerm(k, t.text) || containsTerm(t.text, k))) continue;
    keyTerms.push(collapse(t.text));
  }
  if (keyTerms.length < 2) {
    const stop = new Set(plainWords(frame.stem));
    for (const w of plainWords(rest)) {
      if (keyTerms.length >= Math.min(2, max)) break;
      if (
        w.length < 5 ||
        stop.has(w) ||
        WEAK_WORDS.has(w) ||
        ENGLISH_STOP_WORDS.has(w) ||
        /^\d/.test(w) ||
        keyTerms.some((k) => containsTerm(k, w))
      )
        continue;
      if (containsTerm(frame.stem, w)) continue;
      keyTerms.push(w);
    }
  }
  if (!keyTerms.length) return { failed: 'no-key-term' };
  const source = sourceOf(s);
  return {
    built: {
      sentence: s,
      draft: {
        type: 'SHORT_ANSWER',
        stem: frame.stem,
        answerText: collapsed,
        keyTerms,
        explanation: `A good answer mentions ${keyTerms.map((k) => `\u201c${k}\u201d`).join(', ')}. Source (${citation(source)}): ${quote(s.text)}`,
        source,
      },
    },
  };
}

const TF_RELIABILITY: TermKind[] = [
  'YEAR',
  'NUMBER',
  'PERSON',
  'PLACE',
  'ORGANIZATION',
  'CELESTIAL',
  'ACRONYM',
  'NAMED',
  'CONCEPT',
  'EVENT',
  'NOUN_PHRASE',
];

/** Every attempt a sentence allows for a type, in the order they should be tried. */
function* attempts(type: QuestionType, s: CourseSentence, ctx: Context): Generator<Attempt> {
  if (type === 'SHORT_ANSWER') {
    yield buildShortAnswer(s, ctx);
    return;
  }
  const keys = keyCandidates(s, ctx);
  if (!keys.length) {
    yield { failed: 'no-key-term' };
    return;
  }
  for (const key of keys) {
    if (type === 'FILL_IN_THE_BLANK') {
      // A blank must be guessable from its sentence: no lone common noun of one word.
      if (key.kind === 'NOUN_PHRASE' && key.words === 1) continue;
      yield { built: buildFillIn(s, key) };
    } else if (type === 'MULTIPLE_CHOICE') yield buildMultipleChoice(s, key, ctx);
  }
  if (type === 'TRUE_FALSE') {
    // Swapping a number or a person reliably makes a false statement; swapping an event
    // or a common noun may not ("the Terror" → "the French Revolution" stays true).
    const order = [...keys].sort((a, b) => TF_RELIABILITY.indexOf(a.kind) - TF_RELIABILITY.indexOf(b.kind));
    for (const key of order) {
      if (key.kind === 'EVENT' || key.kind === 'NOUN_PHRASE') continue;
      yield buildTrueFalse(s, key, ctx);
    }
  }
}

function checkOptions(opts: GenerateOptions): void {
  if (!Array.isArray(opts.passages)) throw new TypeError('passages must be an array');
  if (!Number.isInteger(opts.questionCount) || opts.questionCount < 1 || opts.questionCount > MAX_QUESTIONS)
    throw new RangeError(`questionCount must be an integer within 1..${MAX_QUESTIONS}, got ${opts.questionCount}`);
  if (!Array.isArray(opts.types) || !opts.types.length) throw new RangeError('types must list at least one question type');
  for (const t of opts.types)
    if (!(QUESTION_TYPES as readonly string[]).includes(t)) throw new RangeError(`unknown question type ${String(t)}`);
  if (!Number.isFinite(opts.seed)) throw new RangeError(`seed must be a finite number, got ${opts.seed}`);
}

/** Slots by type: the requested types round-robin in a seeded order, as even as the count allows. */
function typePlan(types: QuestionType[], count: number, rng: Random): QuestionType[] {
  const distinct = rng.shuffle([...new Set(types)]);
  return Array.from({ length: count }, (_, i) => distinct[i % distinct.length]!);
}

const bump = (rec: Partial<Record<RejectionRule, number>>, rule: RejectionRule) => {
  rec[rule] = (rec[rule] ?? 0) + 1;
};

/** Validates a candidate; counts each distinct failed rule once. */
function accept(
  draft: ExamQuestionDraft,
  passages: GenerateOptions['passages'],
  kept: readonly ExamQuestionDraft[],
  rejected: Partial<Record<RejectionRule, number>>,
): boolean {
  const issues = validateQuestion(draft, passages);
  if (issues.length) {
    for (const rule of new Set(issues.map((i) => i.rule))) bump(rejected, rule);
    return false;
  }
  if (kept.some((k) => nearDuplicate(k, draft))) {
    bump(rejected, 'near-duplicate');
    return false;
  }
  return true;
}

function arrangeNumeric(built: Built, position: number): string[] | null {
  const n = built.numeric!;
  const below = n.pool.filter((d) => d.value! < n.value);
  const above = n.pool.filter((d) => d.value! > n.value);
  if (below.length < position || above.length < 3 - position) return null;
  const chosen = [...pickDistinct(below, position, false), ...pickDistinct(above, 3 - position, false)];
  if (chosen.length !== 3) return null;
  return [...chosen.map((d) => ({ text: d.text, value: d.value! })), { text: n.key, value: n.value }]
    .sort((a, b) => a.value - b.value)
    .map((o) => o.text);
}

/** Puts MC keys on balanced positions and decides which TF statements are false. */
function finalize(kept: Built[], rng: Random): ExamQuestionDraft[] {
  let block: number[] = [];
  const tf = kept.map((b, i) => [b, i] as const).filter(([b]) => b.draft.type === 'TRUE_FALSE');
  const falses = Math.floor(tf.length / 2) + (tf.length % 2 === 1 ? rng.int(2) : 0);
  const falseSet = new Set(rng.shuffle(tf.map(([, i]) => i)).slice(0, falses));
  return kept.map((b, i) => {
    if (b.draft.type === 'TRUE_FALSE') return falseSet.has(i) && b.falseDraft ? b.falseDraft : b.draft;
    if (b.draft.type !== 'MULTIPLE_CHOICE') return b.draft;
    if (!block.length) block = rng.shuffle([0, 1, 2, 3]);
    const position = block.shift()!;
    const key = b.draft.options![b.draft.answerIndex!]!;
    let options = b.numeric ? arrangeNumeric(b, position) : null;
    if (!options) {
      const distractors = rng.shuffle(b.draft.options!.filter((_, j) => j !== b.draft.answerIndex));
      options = [...distractors.slice(0, position), key, ...distractors.slice(position)];
    }
    return { ...b.draft, options, answerIndex: options.indexOf(key) };
  });
}

/** Sentences in the order to try for the next question: informative, not used, spread over passages and pages. */
function ranked(course: CourseAnalysis, used: Set<number>, kept: Built[], jitter: Map<number, number>): CourseSentence[] {
  const perPassage = new Map<string, number>();
  const perPage = new Map<string, number>();
  for (const b of kept) {
    const p = b.sentence.passage;
    perPassage.set(p.chunkId, (perPassage.get(p.chunkId) ?? 0) + 1);
    const page = `${p.documentId}:${b.sentence.page}`;
    perPage.set(page, (perPage.get(page) ?? 0) + 1);
  }
  return course.usable
    .filter((s) => !used.has(s.index))
    .map((s) => ({
      s,
      v:
        s.score +
        1.2 * jitter.get(s.index)! -
        1.5 * (perPassage.get(s.passage.chunkId) ?? 0) -
        0.8 * (perPage.get(`${s.passage.documentId}:${s.page}`) ?? 0),
    }))
    .sort((a, b) => b.v - a.v || a.s.index - b.s.index)
    .map(({ s }) => s);
}

/** Generates an exam from course passages without a model. Pure and reproducible for a given seed. */
export function generateOffline(opts: GenerateOptions): GenerateResult {
  checkOptions(opts);
  const course = analyseCourse(opts.passages);
  const rng = createRandom(opts.seed);
  const ctx: Context = { course, difficulty: opts.difficulty ?? 'MEDIUM', rng };
  const jitter = new Map(course.usable.map((s) => [s.index, rng.next()] as const));
  const plan = typePlan(opts.types, opts.questionCount, rng);
  const rejected: Partial<Record<RejectionRule, number>> = {};
  const kept: Built[] = [];
  const used = new Set<number>();
  let candidates = 0;
  const exhausted = new Set<QuestionType>();

  const fill = (type: QuestionType): boolean => {
    for (const s of ranked(course, used, kept, jitter)) {
      for (const attempt of attempts(type, s, ctx)) {
        if ('failed' in attempt) {
          bump(rejected, attempt.failed);
          continue;
        }
        const { built } = attempt;
        const keptDrafts = kept.flatMap((k) => (k.falseDraft ? [k.draft, k.falseDraft] : [k.draft]));
        candidates++;
        if (!accept(built.draft, opts.passages, keptDrafts, rejected)) continue;
        if (built.falseDraft) {
          candidates++;
          if (!accept(built.falseDraft, opts.passages, keptDrafts, rejected)) continue;
        }
        kept.push(built);
        used.add(s.index);
        opts.onProgress?.(kept.length, opts.questionCount);
        return true;
      }
    }
    return false;
  };

  for (const type of plan) {
    if (exhausted.has(type)) continue;
    if (!fill(type)) exhausted.add(type);
  }
  // Slots of exhausted types go to the others, in plan order.
  const order = [...new Set(plan)];
  let turn = 0;
  while (kept.length < opts.questionCount && exhausted.size < order.length) {
    const type = order[turn++ % order.length]!;
    if (exhausted.has(type)) continue;
    if (!fill(type)) exhausted.add(type);
  }

  const questions: ExamQuestionDraft[] = [];
  for (const q of finalize(kept, rng)) {
    const issues = validateQuestion(q, opts.passages);
    if (issues.length) {
      for (const rule of new Set(issues.map((i) => i.rule))) bump(rejected, rule);
      continue;
    }
    questions.push(q);
  }
  if (questions.length < opts.questionCount) rejected['material-exhausted'] = opts.questionCount - questions.length;
  return {
    questions,
    rejected,
    candidates,
    sentences: { total: course.sentences.length, usable: course.usable.length, skipped: { ...course.skipped } },
  };
}

export interface GenerationStats {
  /** Usable sentences of the material. */
  sentences: number;
  /** Candidates built: every type requested × every usable sentence × every key it allows. */
  candidates: number;
  /** Candidates that pass `validateQuestion` as built (before any filtering or near-duplicate check). */
  valid: number;
  /** valid / candidates (0 when there are none). */
  share: number;
  /** Failed candidates by rule (each distinct rule of a candidate once), and build failures. */
  rejected: Partial<Record<RejectionRule, number>>;
}

/**
 * How many of the candidates the offline generator can build pass validation
 * before any filtering — the raw precision of the builders, for benchmarks.
 */
export function generationStats(opts: Omit<GenerateOptions, 'questionCount' | 'onProgress'>): GenerationStats {
  checkOptions({ ...opts, questionCount: 1 });
  const course = analyseCourse(opts.passages);
  const ctx: Context = { course, difficulty: opts.difficulty ?? 'MEDIUM', rng: createRandom(opts.seed) };
  const rejected: Partial<Record<RejectionRule, number>> = {};
  let candidates = 0;
  let valid = 0;
  for (const type of new Set(opts.types)) {
    for (const s of course.usable) {
      for (const attempt of attempts(type, s, ctx)) {
        if ('failed' in attempt) {
          bump(rejected, attempt.failed);
          continue;
        }
        for (const draft of [attempt.built.draft, ...(attempt.built.falseDraft ? [attempt.built.falseDraft] : [])]) {
          candidates++;
          const issues = validateQuestion(draft, opts.passages);
          if (!issues.length) valid++;
          for (const rule of new Set(issues.map((i) => i.rule))) bump(rejected, rule);
        }
      }
    }
  }
  return { sentences: course.usable.length, candidates, valid, share: candidates ? valid / candidates : 0, rejected };
}
