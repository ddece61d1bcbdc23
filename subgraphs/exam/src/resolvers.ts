import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/index.js';
import type { Exam, ExamAttempt, ExamQuestion } from '@lib/db/client.js';
import { validateExam, type QuestionType, type ValidationIssue } from '@lib/exam/index.js';
import { DateTime } from '@lib/scalars.js';
import { examItemAnalysis, exportExam, type ExportFormat } from './analysis.js';
import { answerQuestion, attemptAnswers, getAttempt, startAttempt, submitAttempt, type AnswerInput, type AnswerView } from './attempts.js';
import type { ExamContext, View } from './context.js';
import {
  courseExams,
  deleteExam,
  generateExam,
  getExam,
  publishExam,
  taskExam,
  unpublishExam,
  updateExamSettings,
  type ExamSettingsInput,
  type GenerateExamInput,
} from './exams.js';
import {
  addQuestion,
  questionIssues,
  regenerateQuestion,
  removeQuestion,
  reorderQuestions,
  updateQuestion,
  type NewQuestionInput,
  type QuestionPatch,
} from './questions.js';
import { answerValue, toDraft } from './rows.js';

export { createContextFactory, type ExamContext } from './context.js';

const view = (ctx: ExamContext, examId: string): Promise<View> => ctx.views.load(examId);
/** Teachers see everything; a student sees keys, explanations and sentences once answers are shown. */
const answersShown = async (ctx: ExamContext, examId: string) => {
  const v = await view(ctx, examId);
  return v.teacher || v.answers;
};
/** Scores, correctness and the source page: teachers, and students with a submitted attempt and none running. */
const resultsShown = async (ctx: ExamContext, examId: string) => {
  const v = await view(ctx, examId);
  return v.teacher || v.results;
};
const teacherOnly = async <T>(ctx: ExamContext, examId: string, value: () => T | Promise<T>): Promise<T | null> =>
  (await view(ctx, examId)).teacher ? value() : null;
/** A key field: its value when answers are shown, else null. */
const key =
  <T>(get: (q: ExamQuestion) => T) =>
  async (q: ExamQuestion, _: unknown, ctx: ExamContext): Promise<T | null> =>
    (await answersShown(ctx, q.examId)) ? get(q) : null;

const issue = (i: ValidationIssue) => ({ rule: i.rule, message: i.message, questions: i.questions ?? null });
const ref = (typename: string, id: string) => ({ __typename: typename, id });

interface Generation {
  requested?: number;
  made?: number;
  passages?: number;
  candidates?: number;
  rejected?: Record<string, number>;
  note?: string;
  calls?: number;
  repairs?: number;
  cachedCalls?: number;
}
const generationOf = (e: Exam) => (e.generation ?? {}) as Generation;

type Page = Record<string, never>;

export const resolvers: GraphQLResolverMap<ExamContext> = {
  DateTime,
  Query: {
    exam: (_: unknown, { id }: { id: string }, ctx: ExamContext) => getExam(ctx, id),
    examAttempt: (_: unknown, { id }: { id: string }, ctx: ExamContext) => getAttempt(ctx, id),
    exportExam: (_: unknown, a: { id: string; format: ExportFormat }, ctx: ExamContext) => exportExam(ctx, a.id, a.format),
  },
  Mutation: {
    generateExam: (_: unknown, { input }: { input: GenerateExamInput }, ctx: ExamContext) => generateExam(ctx, input),
    updateExamSettings: (_: unknown, a: { id: string; input: ExamSettingsInput }, ctx: ExamContext) =>
      updateExamSettings(ctx, a.id, a.input),
    updateQuestion: (_: unknown, a: { id: string; input: QuestionPatch }, ctx: ExamContext) => updateQuestion(ctx, a.id, a.input),
    addQuestion: (_: unknown, a: { examId: string; input: NewQuestionInput; position?: number | null }, ctx: ExamContext) =>
      addQuestion(ctx, a.examId, a.input, a.position),
    removeQuestion: (_: unknown, { id }: { id: string }, ctx: ExamContext) => removeQuestion(ctx, id),
    reorderQuestions: (_: unknown, a: { examId: string; questionIds: string[] }, ctx: ExamContext) =>
      reorderQuestions(ctx, a.examId, a.questionIds),
    regenerateQuestion: (_: unknown, a: { id: string; type?: QuestionType | null }, ctx: ExamContext) =>
      regenerateQuestion(ctx, a.id, a.type),
    publishExam: (_: unknown, { id }: { id: string }, ctx: ExamContext) => publishExam(ctx, id),
    unpublishExam: (_: unknown, { id }: { id: string }, ctx: ExamContext) => unpublishExam(ctx, id),
    deleteExam: (_: unknown, { id }: { id: string }, ctx: ExamContext) => deleteExam(ctx, id),
    startAttempt: (_: unknown, { examId }: { examId: string }, ctx: ExamContext) => startAttempt(ctx, examId),
    answerQuestion: (_: unknown, a: { attemptId: string; questionId: string; answer: AnswerInput }, ctx: ExamContext) =>
      answerQuestion(ctx, a.attemptId, a.questionId, a.answer),
    submitAttempt: (_: unknown, { attemptId }: { attemptId: string }, ctx: ExamContext) => submitAttempt(ctx, attemptId),
  },
  Exam: {
    __resolveReference: (r: { id: string }, ctx: ExamContext) => getExam(ctx, r.id),
    course: (e: Exam) => ref('Course', e.courseId),
    questionCount: async (e: Exam, _: Page, ctx: ExamContext) => (await ctx.questionsByExam.load(e.id)).length,
    questions: (e: Exam, _: Page, ctx: ExamContext) => teacherOnly(ctx, e.id, () => ctx.questionsByExam.load(e.id)),
    generation: (e: Exam, _: Page, ctx: ExamContext) => teacherOnly(ctx, e.id, () => e),
    error: (e: Exam) => (e.errorCode ? { code: e.errorCode, message: e.errorMessage ?? e.errorCode } : null),
    issues: (e: Exam, _: Page, ctx: ExamContext) =>
      teacherOnly(ctx, e.id, async () => validateExam((await ctx.questionsByExam.load(e.id)).map(toDraft)).map(issue)),
    myAttempts: (e: Exam, _: Page, ctx: ExamContext) => ctx.myAttemptsByExam.load(e.id),
    attemptsLeft: async (e: Exam, _: Page, ctx: ExamContext) =>
      e.attemptsAllowed === null ? null : Math.max(0, e.attemptsAllowed - (await ctx.myAttemptsByExam.load(e.id)).length),
    attempts: (e: Exam, _: Page, ctx: ExamContext) => teacherOnly(ctx, e.id, () => ctx.attemptsByExam.load(e.id)),
    itemAnalysis: (e: Exam, _: Page, ctx: ExamContext) => teacherOnly(ctx, e.id, () => examItemAnalysis(ctx, e)),
  },
  ExamGeneration: {
    task: (e: Exam) => (e.taskId ? ref('Task', e.taskId) : null),
    engine: (e: Exam) => e.engine,
    model: (e: Exam) => e.model,
    requested: (e: Exam) => e.questionCount,
    made: (e: Exam) => generationOf(e).made ?? null,
    types: (e: Exam) => e.types,
    difficulty: (e: Exam) => e.difficulty,
    seed: (e: Exam) => e.seed,
    documents: (e: Exam) => e.documentIds.map((id) => ref('Document', id)),
    passages: (e: Exam) => generationOf(e).passages ?? null,
    candidates: (e: Exam) => generationOf(e).candidates ?? null,
    rejected: (e: Exam) =>
      Object.entries(generationOf(e).rejected ?? {})
        .map(([rule, count]) => ({ rule, count }))
        .sort((a, b) => b.count - a.count || a.rule.localeCompare(b.rule)),
    note: (e: Exam) => generationOf(e).note ?? null,
    usage: (e: Exam) =>
      e.promptTokens === null && e.completionTokens === null
        ? null
        : { promptTokens: e.promptTokens ?? 0, completionTokens: e.completionTokens ?? 0 },
    modelCalls: (e: Exam) => generationOf(e).calls ?? null,
    repairs: (e: Exam) => generationOf(e).repairs ?? null,
    cachedCalls: (e: Exam) => generationOf(e).cachedCalls ?? null,
  },
  Question: {
    options: (q: ExamQuestion) => (q.type === 'MULTIPLE_CHOICE' ? q.options : []),
    answerIndex: key((q) => (q.type === 'MULTIPLE_CHOICE' ? q.answerIndex : null)),
    answerBool: key((q) => (q.type === 'TRUE_FALSE' ? q.answerBool : null)),
    answerText: key((q) => (q.type === 'FILL_IN_THE_BLANK' || q.type === 'SHORT_ANSWER' ? q.answerText : null)),
    acceptedAnswers: key((q) => (q.type === 'FILL_IN_THE_BLANK' ? q.acceptedAnswers : null)),
    keyTerms: key((q) => (q.type === 'SHORT_ANSWER' ? q.keyTerms : null)),
    explanation: key((q) => q.explanation),
    source: async (q: ExamQuestion, _: Page, ctx: ExamContext) => ((await resultsShown(ctx, q.examId)) ? q : null),
    issues: (q: ExamQuestion, _: Page, ctx: ExamContext) =>
      teacherOnly(ctx, q.examId, async () => (await questionIssues(ctx, q)).map(issue)),
  },
  // The parent is the question row (shown only when results are).
  QuestionSource: {
    document: (q: ExamQuestion) => ref('Document', q.documentId),
    sentence: key((q) => q.sentence),
  },
  ExamAttempt: {
    exam: (a: ExamAttempt, _: Page, ctx: ExamContext) => ctx.exams.load(a.examId),
    secondsLeft: (a: ExamAttempt) =>
      a.status === 'IN_PROGRESS' && a.deadline ? Math.max(0, Math.ceil((a.deadline.getTime() - Date.now()) / 1000)) : null,
    questions: (a: ExamAttempt, _: Page, ctx: ExamContext) => ctx.questionsByExam.load(a.examId),
    answers: (a: ExamAttempt, _: Page, ctx: ExamContext) => attemptAnswers(ctx, a),
    score: async (a: ExamAttempt, _: Page, ctx: ExamContext) =>
      a.status === 'SUBMITTED' && (await resultsShown(ctx, a.examId)) ? a.score : null,
    maxScore: async (a: ExamAttempt, _: Page, ctx: ExamContext) =>
      a.status === 'SUBMITTED' && (await resultsShown(ctx, a.examId)) ? a.maxScore : null,
    answersShown: (a: ExamAttempt, _: Page, ctx: ExamContext) => answersShown(ctx, a.examId),
  },
  ExamAnswer: {
    question: async (a: AnswerView, _: Page, ctx: ExamContext) =>
      (await ctx.questionsByExam.load(a.attempt.examId)).find((q) => q.id === a.questionId),
    choice: (a: AnswerView) => {
      const v = answerValue(a.value);
      return typeof v === 'number' ? v : null;
    },
    truth: (a: AnswerView) => {
      const v = answerValue(a.value);
      return typeof v === 'boolean' ? v : null;
    },
    text: (a: AnswerView) => {
      const v = answerValue(a.value);
      return typeof v === 'string' ? v : null;
    },
    correct: async (a: AnswerView, _: Page, ctx: ExamContext) =>
      a.attempt.status === 'SUBMITTED' && (await resultsShown(ctx, a.attempt.examId)) ? a.correct : null,
    score: async (a: AnswerView, _: Page, ctx: ExamContext) =>
      a.attempt.status === 'SUBMITTED' && (await resultsShown(ctx, a.attempt.examId)) ? a.score : null,
    feedback: async (a: AnswerView, _: Page, ctx: ExamContext) =>
      a.attempt.status === 'SUBMITTED' && (await answersShown(ctx, a.attempt.examId)) ? a.feedback : null,
    matchedKeyTerms: async (a: AnswerView, _: Page, ctx: ExamContext) =>
      a.attempt.status === 'SUBMITTED' && a.feedback !== null && (await answersShown(ctx, a.attempt.examId)) ? a.matchedKeyTerms : null,
    missingKeyTerms: async (a: AnswerView, _: Page, ctx: ExamContext) =>
      a.attempt.status === 'SUBMITTED' && a.feedback !== null && (await answersShown(ctx, a.attempt.examId)) ? a.missingKeyTerms : null,
  },
  Course: {
    exams: (course: { id: string }, _: Page, ctx: ExamContext) => courseExams(ctx, course.id),
  },
  Task: {
    __resolveReference: (r: { id: string }) => ({ id: r.id }),
    exam: (task: { id: string }, _: Page, ctx: ExamContext) => taskExam(ctx, task.id),
  },
};
