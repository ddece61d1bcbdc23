/**
 * Exams: reading them (drafts for teachers, published ones for students),
 * generating them (a Task and a job, like ingestion), their settings,
 * publishing, deleting and exporting.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { assertUuid, requireCourseMember, requireCourseTeacher } from '@lib/access.js';
import { Prisma, type Exam } from '@lib/db/client.js';
import { startTask, taskByIdempotencyKey } from '@lib/tasks/store.js';
import { taskView } from '@lib/tasks/view.js';
import { appError, badInput, ErrorCode, notFound } from '@lib/errors.js';
import { MAX_QUESTIONS, QUESTION_TYPES, DIFFICULTIES, type Difficulty, type QuestionType } from '@lib/exam/index.js';
import type { ExamContext } from './context.js';

export const MAX_TITLE_CHARS = 200;
export const MAX_DOCUMENT_IDS = 100;
export const MAX_TIME_LIMIT_MINUTES = 24 * 60;
export const MAX_ATTEMPTS = 100;

/** A CONFLICT with a machine-readable reason (extensions.reason). */
export const conflict = (reason: string, message: string) => appError(ErrorCode.CONFLICT, message, { reason });

/** The exam if the caller may see it: teachers (and admins) any, students published ones. */
export async function getExam(ctx: ExamContext, rawId: string): Promise<Exam> {
  const exam = await ctx.exams.load(assertUuid(rawId));
  if (!exam) throw notFound('Exam');
  await requireCourseMember(ctx, exam.courseId);
  const view = await ctx.views.load(exam.id);
  if (!view.teacher && exam.status !== 'PUBLISHED') throw notFound('Exam');
  return exam;
}

/** The exam, for its course's teachers (and admins) only. */
export async function teacherExam(ctx: ExamContext, rawId: string): Promise<Exam> {
  const exam = await getExam(ctx, rawId);
  await requireCourseTeacher(ctx, exam.courseId);
  return exam;
}

export async function courseExams(ctx: ExamContext, courseId: string): Promise<Exam[]> {
  const role = await requireCourseMember(ctx, courseId);
  const exams = await ctx.examsByCourse.load(courseId);
  return role === 'TEACHER' || ctx.identity.role === 'ADMIN' ? exams : exams.filter((e) => e.status === 'PUBLISHED');
}

/** Task.exam: the exam a GENERATE_EXAM task makes (teachers of the course; the task itself is theirs to see). */
export async function taskExam(ctx: ExamContext, taskId: string): Promise<Exam | null> {
  const exam = await ctx.examsByTask.load(taskId);
  if (!exam) return null;
  return (await ctx.views.load(exam.id)).teacher ? exam : null;
}

export interface GenerateExamInput {
  courseId: string;
  title: string;
  documentIds?: string[] | null;
  questionCount: number;
  types: QuestionType[];
  difficulty?: Difficulty | null;
  seed?: number | null;
  idempotencyKey?: string | null;
}

export function cleanTitle(raw: string): string {
  const title = raw.trim();
  if (title.length < 1 || title.length > MAX_TITLE_CHARS) throw badInput(`The title must be 1 to ${MAX_TITLE_CHARS} characters`, 'title');
  return title;
}

/**
 * Records the exam (GENERATING) and its task in one transaction, then enqueues
 * the job (startTask: job id = task id; the worker's reconciler enqueues it if
 * Redis failed in between). The same idempotencyKey returns the first task.
 */
export async function generateExam(ctx: ExamContext, input: GenerateExamInput) {
  const courseId = assertUuid(input.courseId, 'courseId');
  const title = cleanTitle(input.title);
  if (!Number.isInteger(input.questionCount) || input.questionCount < 1 || input.questionCount > MAX_QUESTIONS)
    throw badInput(`questionCount must be 1 to ${MAX_QUESTIONS}`, 'questionCount');
  const types = [...new Set(input.types)];
  if (!types.length || !types.every((t) => (QUESTION_TYPES as readonly string[]).includes(t)))
    throw badInput('Give at least one question type', 'types');
  const difficulty = input.difficulty ?? 'MEDIUM';
  if (!(DIFFICULTIES as readonly string[]).includes(difficulty)) throw badInput('Unknown difficulty', 'difficulty');
  const documentIds = input.documentIds ? [...new Set(input.documentIds.map((id) => assertUuid(id, 'documentIds')))] : [];
  if (input.documentIds && (documentIds.length < 1 || documentIds.length > MAX_DOCUMENT_IDS))
    throw badInput(`Give 1 to ${MAX_DOCUMENT_IDS} documentIds, or none`, 'documentIds');
  const key = input.idempotencyKey?.trim() || null;
  if (key !== null && key.length > 200) throw badInput('idempotencyKey must be at most 200 characters', 'idempotencyKey');
  if (!(await ctx.prisma.course.findUnique({ where: { id: courseId }, select: { id: true } }))) throw notFound('Course');
  await requireCourseTeacher(ctx, courseId);
  const owner = ctx.identity.userId;

  const checkExisting = (task: { courseId: string; kind: string }) => {
    if (task.courseId !== courseId || task.kind !== 'GENERATE_EXAM')
      throw appError(ErrorCode.CONFLICT, 'This idempotencyKey was already used for another task');
  };
  const seen = await taskByIdempotencyKey(ctx.prisma, owner, key, checkExisting);
  if (seen) return taskView(seen);

  const ready = await ctx.prisma.document.findMany({
    where: { courseId, status: 'READY', ...(documentIds.length ? { id: { in: documentIds } } : {}) },
    select: { id: true },
  });
  if (documentIds.length && ready.length !== documentIds.length) {
    const missing = documentIds.filter((id) => !ready.some((d) => d.id === id));
    throw badInput(`Not ready documents of this course: ${missing.join(', ')}`, 'documentIds');
  }
  if (!ready.length) throw badInput('The course has no ready documents to make questions from', 'courseId');

  const seed = input.seed ?? randomInt(0, 2 ** 31 - 1);
  if (!Number.isInteger(seed)) throw badInput('seed must be an integer', 'seed');
  const taskId = randomUUID();
  const examId = randomUUID();
  const { task, created } = await startTask(
    { prisma: ctx.prisma, queues: ctx.deps.queues, tasks: ctx.deps.tasks, log: ctx.log },
    {
      kind: 'GENERATE_EXAM',
      ownerId: owner,
      courseId,
      payload: { taskId, examId, courseId },
      idempotencyKey: key,
      checkExisting,
      subject: Prisma.sql`
        INSERT INTO "Exam" (id, "courseId", title, "createdBy", status, "taskId", "documentIds", "questionCount", types, difficulty, seed)
        SELECT ${examId}::uuid, ${courseId}::uuid, ${title}, ${owner}, 'GENERATING', task.id, ${documentIds}::uuid[],
               ${input.questionCount}, ${types}::"QuestionType"[], ${difficulty}::"ExamDifficulty", ${seed}
        FROM task`,
    },
  );
  if (!created) return taskView(task);
  ctx.log.info({ taskId, examId, courseId, questionCount: input.questionCount, types, difficulty, seed }, 'exam generation accepted');
  return taskView(task);
}

export interface ExamSettingsInput {
  title?: string | null;
  timeLimitMinutes?: number | null;
  attemptsAllowed?: number | null;
  showAnswers?: Exam['showAnswers'] | null;
  closesAt?: Date | null;
}

export async function updateExamSettings(ctx: ExamContext, rawId: string, input: ExamSettingsInput): Promise<Exam> {
  const exam = await teacherExam(ctx, rawId);
  const data: Prisma.ExamUpdateInput = {};
  if (input.title !== undefined) {
    if (input.title === null) throw badInput('The title cannot be cleared', 'title');
    data.title = cleanTitle(input.title);
  }
  if (input.timeLimitMinutes !== undefined) {
    const v = input.timeLimitMinutes;
    if (v !== null && (!Number.isInteger(v) || v < 1 || v > MAX_TIME_LIMIT_MINUTES))
      throw badInput(`timeLimitMinutes must be 1 to ${MAX_TIME_LIMIT_MINUTES}, or null`, 'timeLimitMinutes');
    data.timeLimitMinutes = v;
  }
  if (input.attemptsAllowed !== undefined) {
    const v = input.attemptsAllowed;
    if (v !== null && (!Number.isInteger(v) || v < 1 || v > MAX_ATTEMPTS))
      throw badInput(`attemptsAllowed must be 1 to ${MAX_ATTEMPTS}, or null`, 'attemptsAllowed');
    data.attemptsAllowed = v;
  }
  if (input.showAnswers !== undefined) {
    if (input.showAnswers === null) throw badInput('showAnswers cannot be cleared', 'showAnswers');
    data.showAnswers = input.showAnswers;
  }
  if (input.closesAt !== undefined) data.closesAt = input.closesAt;
  const updated = await ctx.prisma.exam.update({ where: { id: exam.id }, data });
  ctx.exams.clear(exam.id).prime(exam.id, updated);
  return updated;
}

export async function publishExam(ctx: ExamContext, rawId: string): Promise<Exam> {
  const exam = await teacherExam(ctx, rawId);
  if (exam.status === 'PUBLISHED') return exam;
  if (exam.status !== 'DRAFT') throw conflict('NOT_DRAFT', `Only a draft can be published; this exam is ${exam.status.toLowerCase()}`);
  const count = await ctx.prisma.examQuestion.count({ where: { examId: exam.id } });
  if (!count) throw conflict('NO_QUESTIONS', 'An exam needs at least one question to be published');
  const { count: changed } = await ctx.prisma.exam.updateMany({
    where: { id: exam.id, status: 'DRAFT' },
    data: { status: 'PUBLISHED', publishedAt: new Date() },
  });
  if (!changed) throw conflict('NOT_DRAFT', 'The exam changed meanwhile; read it again');
  ctx.log.info({ examId: exam.id, questions: count }, 'exam published');
  return refreshed(ctx, exam.id);
}

export async function unpublishExam(ctx: ExamContext, rawId: string): Promise<Exam> {
  const exam = await teacherExam(ctx, rawId);
  if (exam.status !== 'PUBLISHED') return exam;
  // Attempts are graded against the questions as they are: those may no longer change.
  const attempts = await ctx.prisma.examAttempt.count({ where: { examId: exam.id } });
  if (attempts)
    throw conflict(
      'HAS_ATTEMPTS',
      `Students have started ${attempts} attempt(s): the exam can no longer return to a draft. Set closesAt to close it, or delete it.`,
    );
  await ctx.prisma.exam.updateMany({ where: { id: exam.id, status: 'PUBLISHED' }, data: { status: 'DRAFT', publishedAt: null } });
  return refreshed(ctx, exam.id);
}

export async function deleteExam(ctx: ExamContext, rawId: string): Promise<boolean> {
  const exam = await teacherExam(ctx, rawId);
  if (exam.taskId && exam.status === 'GENERATING') {
    const cancelled = await ctx.deps.tasks.cancel(exam.taskId);
    if (cancelled) await ctx.deps.queues.removeIfWaiting('GENERATE_EXAM', exam.taskId);
  }
  const { count } = await ctx.prisma.exam.deleteMany({ where: { id: exam.id } });
  ctx.log.info({ examId: exam.id, courseId: exam.courseId }, 'exam deleted');
  return count > 0;
}

export async function refreshed(ctx: ExamContext, id: string): Promise<Exam> {
  const exam = await ctx.prisma.exam.findUniqueOrThrow({ where: { id } });
  ctx.exams.clear(id).prime(id, exam);
  ctx.views.clear(id);
  return exam;
}

/** A draft the caller may edit: teachers, DRAFT status. */
export async function draftExam(ctx: ExamContext, examId: string): Promise<Exam> {
  const exam = await teacherExam(ctx, examId);
  if (exam.status !== 'DRAFT')
    throw conflict(
      'NOT_DRAFT',
      exam.status === 'PUBLISHED'
        ? 'Published exams cannot be edited: unpublish it first'
        : `The exam is ${exam.status.toLowerCase()}: only drafts can be edited`,
    );
  return exam;
}
