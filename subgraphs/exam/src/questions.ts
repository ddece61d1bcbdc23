/**
 * Teachers' review of a draft: editing, adding, removing, reordering and
 * regenerating questions. Every edited or added question must pass the checks
 * a generated one passes (lib/exam validateQuestion against its source
 * passage); the first failure is a BAD_USER_INPUT naming the input field.
 *
 * Regeneration is the fast path: the offline generator runs here, in the
 * request, over a spread sample of the exam's material (REGENERATE_PASSAGES
 * passages), and the first candidate of the asked type that is not a
 * near-duplicate of the exam's other questions replaces the question.
 */
import { assertUuid } from '@lib/access.js';
import type { Exam, ExamQuestion } from '@lib/db/client.js';
import { badInput, notFound } from '@lib/errors.js';
import {
  generateOffline,
  nearDuplicate,
  QUESTION_TYPES,
  validateQuestion,
  type ExamPassage,
  type ExamQuestionDraft,
  type QuestionType,
  type ValidationIssue,
} from '@lib/exam/index.js';
import { BLANK, exactPages, fold, locateSentence, pageAt } from '@lib/exam/text.js';
import { murmurhash3 } from '@lib/search/lexical.js';
import type { ExamContext } from './context.js';
import { draftExam, refreshed } from './exams.js';
import { draftColumns, passagesById, spreadPassages } from '@lib/exam/store.js';
import { toDraft } from './rows.js';

export const MAX_STEM_CHARS = 1000;
export const MAX_OPTION_CHARS = 300;
export const MAX_EXPLANATION_CHARS = 2000;
export const MAX_KEY_TERMS = 5;
/** Passages the regeneration fast path draws from. */
export const REGENERATE_PASSAGES = 48;

export interface SourceInput {
  chunkId: string;
  sentence: string;
}

export interface QuestionPatch {
  type?: QuestionType | null;
  stem?: string | null;
  options?: string[] | null;
  answerIndex?: number | null;
  answerBool?: boolean | null;
  answerText?: string | null;
  acceptedAnswers?: string[] | null;
  keyTerms?: string[] | null;
  explanation?: string | null;
  source?: SourceInput | null;
}

export interface NewQuestionInput extends QuestionPatch {
  type: QuestionType;
  stem: string;
  explanation: string;
  source: SourceInput;
}

/** A question of a draft the caller may edit. */
async function editableQuestion(ctx: ExamContext, rawId: string): Promise<{ exam: Exam; question: ExamQuestion }> {
  const id = assertUuid(rawId);
  const question = await ctx.prisma.examQuestion.findUnique({ where: { id } });
  if (!question) throw notFound('Question');
  const exam = await draftExam(ctx, question.examId);
  return { exam, question };
}

/** The source a teacher points at: a sentence of a passage of the course's ready documents. */
async function sourceFrom(
  ctx: ExamContext,
  exam: Exam,
  input: SourceInput,
): Promise<{ passage: ExamPassage; source: ExamQuestionDraft['source'] }> {
  const sentence = input.sentence?.trim() ?? '';
  if (!sentence) throw badInput('The source sentence is empty', 'source.sentence');
  const passage = (await passagesById(ctx.prisma, exam.courseId, [input.chunkId])).get(input.chunkId);
  if (!passage) throw badInput('No passage of this course’s ready documents has this chunkId', 'source.chunkId');
  const at = locateSentence(passage.text, sentence);
  if (!at) throw badInput('The sentence is not in that passage (copy it verbatim)', 'source.sentence');
  return {
    passage,
    source: {
      chunkId: passage.chunkId,
      documentId: passage.documentId,
      documentTitle: passage.documentTitle,
      pageStart: passage.pageStart,
      pageEnd: passage.pageEnd,
      page: pageAt(passage, at.start),
      pageExact: exactPages(passage),
      sentence: passage.text.slice(at.start, at.end),
    },
  };
}

const text = (v: string | null | undefined) => (typeof v === 'string' ? v.trim() : v);

/** The question a patch makes of a base (fields of other types dropped). */
function applyPatch(base: ExamQuestionDraft | null, patch: QuestionPatch, source: ExamQuestionDraft['source']): ExamQuestionDraft {
  const pick = <K extends keyof QuestionPatch>(k: K): QuestionPatch[K] | undefined =>
    patch[k] !== undefined ? patch[k] : (base?.[k as keyof ExamQuestionDraft] as QuestionPatch[K] | undefined);
  const type = (patch.type ?? base?.type)!;
  const draft: ExamQuestionDraft = {
    type,
    stem: text(pick('stem')) ?? '',
    explanation: text(pick('explanation')) ?? '',
    source,
  };
  if (type === 'MULTIPLE_CHOICE') {
    draft.options = (pick('options') ?? []).map((o) => o.trim());
    const index = pick('answerIndex');
    if (index !== null && index !== undefined) draft.answerIndex = index;
  }
  if (type === 'TRUE_FALSE') {
    const b = pick('answerBool');
    if (b !== null && b !== undefined) draft.answerBool = b;
  }
  if (type === 'FILL_IN_THE_BLANK' || type === 'SHORT_ANSWER') {
    const t = text(pick('answerText'));
    if (t) draft.answerText = t;
  }
  if (type === 'FILL_IN_THE_BLANK') {
    const accepted = (pick('acceptedAnswers') ?? []).map((a) => a.trim()).filter(Boolean);
    if (accepted.length) draft.acceptedAnswers = accepted;
  }
  if (type === 'SHORT_ANSWER') draft.keyTerms = (pick('keyTerms') ?? []).map((t) => t.trim());
  return draft;
}

/** Input-level checks, each naming its field, before the content rules of lib/exam. */
function checkShape(d: ExamQuestionDraft): void {
  if (!(QUESTION_TYPES as readonly string[]).includes(d.type)) throw badInput('Unknown question type', 'type');
  if (!d.stem) throw badInput('The stem is empty', 'stem');
  if (d.stem.length > MAX_STEM_CHARS) throw badInput(`The stem is longer than ${MAX_STEM_CHARS} characters`, 'stem');
  if (!d.explanation) throw badInput('The explanation is empty', 'explanation');
  if (d.explanation.length > MAX_EXPLANATION_CHARS)
    throw badInput(`The explanation is longer than ${MAX_EXPLANATION_CHARS} characters`, 'explanation');
  switch (d.type) {
    case 'MULTIPLE_CHOICE': {
      const options = d.options ?? [];
      if (options.length !== 4) throw badInput(`A multiple-choice question has exactly 4 options, not ${options.length}`, 'options');
      if (options.some((o) => !o)) throw badInput('An option is empty', 'options');
      if (options.some((o) => o.length > MAX_OPTION_CHARS))
        throw badInput(`An option is longer than ${MAX_OPTION_CHARS} characters`, 'options');
      if (new Set(options.map(fold)).size !== 4) throw badInput('Two options are the same (ignoring case and spacing)', 'options');
      if (d.answerIndex === undefined || !Number.isInteger(d.answerIndex) || d.answerIndex < 0 || d.answerIndex > 3)
        throw badInput('answerIndex must be the index (0-3) of the correct option', 'answerIndex');
      break;
    }
    case 'TRUE_FALSE':
      if (typeof d.answerBool !== 'boolean') throw badInput('A true/false question needs answerBool', 'answerBool');
      break;
    case 'FILL_IN_THE_BLANK':
      if (!d.answerText) throw badInput('A fill-in-the-blank question needs answerText (the missing words)', 'answerText');
      if (d.stem.split(BLANK).length !== 2) throw badInput(`The stem must contain exactly one ${BLANK}`, 'stem');
      break;
    case 'SHORT_ANSWER': {
      if (!d.answerText) throw badInput('A short-answer question needs answerText (the reference answer)', 'answerText');
      const terms = d.keyTerms ?? [];
      if (terms.length < 1 || terms.length > MAX_KEY_TERMS || terms.some((t) => !t))
        throw badInput(`A short-answer question needs 1 to ${MAX_KEY_TERMS} key terms`, 'keyTerms');
      break;
    }
  }
}

/** The input field a validation issue is about. */
export function fieldOf(d: ExamQuestionDraft, issue: ValidationIssue): string {
  const m = issue.message;
  switch (issue.rule) {
    case 'source':
      return 'source';
    case 'options':
    case 'distractor-kind':
      return 'options';
    case 'answer-in-stem':
      return 'stem';
    case 'key':
      return /answerIndex/.test(m) ? 'answerIndex' : 'options';
    case 'unsupported':
      if (d.type === 'MULTIPLE_CHOICE') return 'options';
      if (d.type === 'TRUE_FALSE') return 'stem';
      if (d.type === 'SHORT_ANSWER' && /key term/.test(m)) return 'keyTerms';
      return 'answerText';
    default:
      if (/option/.test(m)) return 'options';
      if (/answerBool/.test(m)) return 'answerBool';
      if (/blank/.test(m)) return 'stem';
      if (/key terms/.test(m)) return 'keyTerms';
      if (/source/.test(m)) return 'source';
      if (/explanation/.test(m)) return 'explanation';
      if (/stem|statement/.test(m)) return 'stem';
      return 'answerText';
  }
}

/** Throws BAD_USER_INPUT (naming the field) unless the question passes every check of a generated one. */
export function checkQuestion(d: ExamQuestionDraft, passage: ExamPassage): void {
  checkShape(d);
  const issues = validateQuestion(d, [passage]);
  const first = issues[0];
  if (first) throw badInput(`${first.message} (rule ${first.rule})`, fieldOf(d, first));
}

export async function updateQuestion(ctx: ExamContext, rawId: string, patch: QuestionPatch): Promise<ExamQuestion> {
  const { exam, question } = await editableQuestion(ctx, rawId);
  let passage: ExamPassage | undefined;
  let source = toDraft(question).source;
  if (patch.source) ({ passage, source } = await sourceFrom(ctx, exam, patch.source));
  else {
    passage = (await passagesById(ctx.prisma, exam.courseId, [question.chunkId])).get(question.chunkId);
    if (!passage || !locateSentence(passage.text, question.sentence))
      throw badInput('The question’s source passage has changed or gone since it was made: give a new source', 'source');
  }
  const draft = applyPatch(toDraft(question), patch, source);
  checkQuestion(draft, passage);
  const updated = await ctx.prisma.examQuestion.update({
    where: { id: question.id },
    data: { ...draftColumns(draft), origin: question.origin === 'ADDED' ? 'ADDED' : 'EDITED', version: { increment: 1 } },
  });
  ctx.questionsByExam.clear(exam.id);
  return updated;
}

export async function addQuestion(
  ctx: ExamContext,
  rawExamId: string,
  input: NewQuestionInput,
  position?: number | null,
): Promise<ExamQuestion> {
  const exam = await draftExam(ctx, assertUuid(rawExamId, 'examId'));
  if (!input.source) throw badInput('A question needs a source', 'source');
  const { passage, source } = await sourceFrom(ctx, exam, input.source);
  const draft = applyPatch(null, input, source);
  checkQuestion(draft, passage);
  return ctx.prisma.$transaction(async (tx) => {
    const count = await tx.examQuestion.count({ where: { examId: exam.id } });
    const at = position ?? count;
    if (!Number.isInteger(at) || at < 0 || at > count) throw badInput(`position must be 0 to ${count}`, 'position');
    await tx.examQuestion.updateMany({ where: { examId: exam.id, position: { gte: at } }, data: { position: { increment: 1 } } });
    const created = await tx.examQuestion.create({ data: { examId: exam.id, position: at, origin: 'ADDED', ...draftColumns(draft) } });
    await tx.exam.update({ where: { id: exam.id }, data: { updatedAt: new Date() } });
    return created;
  });
}

export async function removeQuestion(ctx: ExamContext, rawId: string): Promise<Exam> {
  const { exam, question } = await editableQuestion(ctx, rawId);
  await ctx.prisma.$transaction([
    ctx.prisma.examQuestion.delete({ where: { id: question.id } }),
    ctx.prisma.examQuestion.updateMany({
      where: { examId: exam.id, position: { gt: question.position } },
      data: { position: { decrement: 1 } },
    }),
    ctx.prisma.exam.update({ where: { id: exam.id }, data: { updatedAt: new Date() } }),
  ]);
  ctx.questionsByExam.clear(exam.id);
  return refreshed(ctx, exam.id);
}

export async function reorderQuestions(ctx: ExamContext, rawExamId: string, rawIds: string[]): Promise<Exam> {
  const exam = await draftExam(ctx, assertUuid(rawExamId, 'examId'));
  const ids = rawIds.map((id) => assertUuid(id, 'questionIds'));
  const current = await ctx.prisma.examQuestion.findMany({ where: { examId: exam.id }, select: { id: true } });
  const known = new Set(current.map((q) => q.id));
  if (ids.length !== current.length || new Set(ids).size !== ids.length || !ids.every((id) => known.has(id)))
    throw badInput(`Give every question of the exam exactly once (${current.length} ids)`, 'questionIds');
  await ctx.prisma.$transaction([
    ...ids.map((id, position) => ctx.prisma.examQuestion.update({ where: { id }, data: { position } })),
    ctx.prisma.exam.update({ where: { id: exam.id }, data: { updatedAt: new Date() } }),
  ]);
  ctx.questionsByExam.clear(exam.id);
  return refreshed(ctx, exam.id);
}

export async function regenerateQuestion(ctx: ExamContext, rawId: string, rawType?: QuestionType | null): Promise<ExamQuestion> {
  const { exam, question } = await editableQuestion(ctx, rawId);
  const type = rawType ?? question.type;
  if (!(QUESTION_TYPES as readonly string[]).includes(type)) throw badInput('Unknown question type', 'type');
  const seed = murmurhash3(`${exam.seed}:${question.id}:${question.version}`) >>> 1;
  const { passages } = await spreadPassages(ctx.prisma, exam.courseId, exam.documentIds, REGENERATE_PASSAGES, seed);
  if (!passages.length) throw badInput('The exam’s documents have no ready passages left', 'type');
  const others = (await ctx.prisma.examQuestion.findMany({ where: { examId: exam.id, id: { not: question.id } } })).map(toDraft);
  const old = toDraft(question);
  const started = Date.now();
  const made = generateOffline({ passages, questionCount: 12, types: [type], difficulty: exam.difficulty, seed }).questions;
  const fresh = made.find(
    (q) => !others.some((o) => nearDuplicate(o, q)) && !nearDuplicate(old, q) && fold(q.source.sentence) !== fold(old.source.sentence),
  );
  ctx.log.info(
    { questionId: question.id, type, passages: passages.length, candidates: made.length, ms: Date.now() - started },
    'question regenerated',
  );
  if (!fresh) throw badInput(`The material offers no other ${type.toLowerCase().replace(/_/g, '-')} question`, 'type');
  const updated = await ctx.prisma.examQuestion.update({
    where: { id: question.id },
    data: { ...draftColumns(fresh), origin: 'REGENERATED', version: { increment: 1 } },
  });
  ctx.questionsByExam.clear(exam.id);
  return updated;
}

/** What the validator says about a stored question now, against its current source passage. */
export async function questionIssues(ctx: ExamContext, q: ExamQuestion): Promise<ValidationIssue[]> {
  const passage = await ctx.passages.load(q.chunkId);
  return validateQuestion(toDraft(q), passage ? [passage] : []);
}
