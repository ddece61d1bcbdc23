/**
 * Students taking exams: starting an attempt (within attemptsAllowed, before
 * closesAt; a running attempt is returned instead of a second one), saving
 * answers until the deadline, submitting (graded at once). The deadline is
 * the server's: an attempt past it is submitted when next touched and answers
 * after it are refused (DEADLINE_GRACE_MS of slack).
 */
import { assertUuid, requireCourseMember } from '@lib/access.js';
import { Prisma, type ExamAnswer, type ExamAttempt } from '@lib/db/client.js';
import { badInput, forbidden, notFound } from '@lib/errors.js';
import type { ExamContext } from './context.js';
import { conflict, getExam } from './exams.js';
import { isExpired, submitAndGrade } from './grading.js';

export const MAX_ANSWER_CHARS = 2000;

export interface AnswerInput {
  choice?: number | null;
  truth?: boolean | null;
  text?: string | null;
}

/** An answer with the attempt it belongs to (resolvers need its status). */
export type AnswerView = ExamAnswer & { attempt: ExamAttempt };

/** An attempt the caller may read: their own, or any at an exam of a course they teach (admins: any). */
export async function getAttempt(ctx: ExamContext, rawId: string): Promise<ExamAttempt> {
  const attempt = await ctx.attempts.load(assertUuid(rawId));
  if (!attempt) throw notFound('Attempt');
  if (attempt.userId !== ctx.identity.userId) {
    const exam = await ctx.exams.load(attempt.examId);
    if (!exam || !(await ctx.views.load(exam.id).catch(() => null))?.teacher) throw notFound('Attempt');
  }
  if (isExpired(attempt)) {
    await submitAndGrade(ctx.prisma, attempt.id, true);
    return reload(ctx, attempt);
  }
  return attempt;
}

async function ownAttempt(ctx: ExamContext, rawId: string): Promise<ExamAttempt> {
  const attempt = await ctx.attempts.load(assertUuid(rawId, 'attemptId'));
  if (!attempt || attempt.userId !== ctx.identity.userId) throw notFound('Attempt');
  return attempt;
}

async function reload(ctx: ExamContext, attempt: ExamAttempt): Promise<ExamAttempt> {
  const fresh = await ctx.prisma.examAttempt.findUniqueOrThrow({ where: { id: attempt.id } });
  ctx.attempts.clear(fresh.id).prime(fresh.id, fresh);
  ctx.myAttemptsByExam.clear(fresh.examId);
  ctx.attemptsByExam.clear(fresh.examId);
  ctx.answersByAttempt.clear(fresh.id);
  ctx.views.clear(fresh.examId);
  return fresh;
}

export async function startAttempt(ctx: ExamContext, rawExamId: string): Promise<ExamAttempt> {
  const exam = await getExam(ctx, assertUuid(rawExamId, 'examId'));
  const role = await requireCourseMember(ctx, exam.courseId);
  if (role === null) throw forbidden('Only members of the course take its exams');
  if (exam.status !== 'PUBLISHED') throw conflict('NOT_PUBLISHED', 'Only a published exam can be taken');
  const mine = await ctx.myAttemptsByExam.load(exam.id); // expired ones are submitted on the way
  const running = mine.find((a) => a.status === 'IN_PROGRESS');
  if (running) return running;
  const now = Date.now();
  if (exam.closesAt && exam.closesAt.getTime() <= now) throw conflict('EXAM_CLOSED', `The exam closed at ${exam.closesAt.toISOString()}`);
  if (exam.attemptsAllowed !== null && mine.length >= exam.attemptsAllowed)
    throw conflict('NO_ATTEMPTS_LEFT', `You have used your ${exam.attemptsAllowed} attempt(s) at this exam`);
  const limits = [
    ...(exam.timeLimitMinutes ? [now + exam.timeLimitMinutes * 60_000] : []),
    ...(exam.closesAt ? [exam.closesAt.getTime()] : []),
  ];
  const number = Math.max(0, ...mine.map((a) => a.number)) + 1;
  try {
    const created = await ctx.prisma.examAttempt.create({
      data: {
        examId: exam.id,
        userId: ctx.identity.userId,
        number,
        startedAt: new Date(now),
        deadline: limits.length ? new Date(Math.min(...limits)) : null,
      },
    });
    ctx.log.info({ examId: exam.id, attemptId: created.id, number, deadline: created.deadline }, 'attempt started');
    return reload(ctx, created);
  } catch (err) {
    // Started twice at once: the other request's attempt is the running one.
    if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') {
      const other = await ctx.prisma.examAttempt.findFirst({
        where: { examId: exam.id, userId: ctx.identity.userId, status: 'IN_PROGRESS' },
      });
      if (other) return other;
      throw conflict('NO_ATTEMPTS_LEFT', 'Another attempt was started and submitted meanwhile');
    }
    throw err;
  }
}

/** The stored form of an answer to a question of this type, or BAD_USER_INPUT naming the field. */
function answerValue(type: string, answer: AnswerInput): number | boolean | string {
  const given = (['choice', 'truth', 'text'] as const).filter((k) => answer[k] !== null && answer[k] !== undefined);
  if (given.length !== 1) throw badInput('Give exactly one of choice, truth and text', 'answer');
  if (type === 'MULTIPLE_CHOICE') {
    const c = answer.choice;
    if (c === null || c === undefined) throw badInput('A multiple-choice question is answered with choice', 'answer.choice');
    if (!Number.isInteger(c) || c < 0 || c > 3) throw badInput('choice must be 0 to 3', 'answer.choice');
    return c;
  }
  if (type === 'TRUE_FALSE') {
    if (typeof answer.truth !== 'boolean') throw badInput('A true/false question is answered with truth', 'answer.truth');
    return answer.truth;
  }
  if (typeof answer.text !== 'string') throw badInput('This question is answered with text', 'answer.text');
  if (answer.text.length > MAX_ANSWER_CHARS) throw badInput(`An answer is at most ${MAX_ANSWER_CHARS} characters`, 'answer.text');
  return answer.text;
}

export async function answerQuestion(
  ctx: ExamContext,
  rawAttemptId: string,
  rawQuestionId: string,
  answer: AnswerInput,
): Promise<AnswerView> {
  const attempt = await ownAttempt(ctx, rawAttemptId);
  const questionId = assertUuid(rawQuestionId, 'questionId');
  if (attempt.status === 'SUBMITTED')
    throw conflict('ATTEMPT_SUBMITTED', 'This attempt has been submitted: its answers can no longer change');
  if (isExpired(attempt)) {
    await submitAndGrade(ctx.prisma, attempt.id, true);
    await reload(ctx, attempt);
    throw conflict('TIME_UP', 'The time limit has passed: the attempt was submitted with the answers saved before it');
  }
  const question = (await ctx.questionsByExam.load(attempt.examId)).find((q) => q.id === questionId);
  if (!question) throw badInput('No question of this exam has this id', 'questionId');
  const value = answerValue(question.type, answer);
  const saved = await ctx.prisma.$transaction(async (tx) => {
    // The attempt row is the lock: a submission that got in first wins.
    const [row] = await tx.$queryRaw<{ status: string }[]>`SELECT status FROM "ExamAttempt" WHERE id = ${attempt.id}::uuid FOR UPDATE`;
    if (row?.status !== 'IN_PROGRESS') return null;
    return tx.examAnswer.upsert({
      where: { attemptId_questionId: { attemptId: attempt.id, questionId } },
      create: { attemptId: attempt.id, questionId, value, answeredAt: new Date() },
      update: { value, answeredAt: new Date() },
    });
  });
  if (!saved) throw conflict('ATTEMPT_SUBMITTED', 'This attempt has been submitted: its answers can no longer change');
  ctx.answersByAttempt.clear(attempt.id);
  return { ...saved, attempt };
}

export async function submitAttempt(ctx: ExamContext, rawAttemptId: string): Promise<ExamAttempt> {
  const attempt = await ownAttempt(ctx, rawAttemptId);
  if (attempt.status === 'SUBMITTED') return attempt;
  // Past the deadline (and its grace), the answers saved before it are what is graded.
  const submitted = await submitAndGrade(ctx.prisma, attempt.id, isExpired(attempt));
  const fresh = await reload(ctx, attempt);
  if (submitted)
    ctx.log.info({ attemptId: fresh.id, examId: fresh.examId, score: fresh.score, maxScore: fresh.maxScore }, 'attempt submitted');
  return fresh;
}

/** An attempt's answers: the saved ones while in progress, one per question (in order) once submitted. */
export async function attemptAnswers(ctx: ExamContext, attempt: ExamAttempt): Promise<AnswerView[]> {
  const [answers, questions] = await Promise.all([ctx.answersByAttempt.load(attempt.id), ctx.questionsByExam.load(attempt.examId)]);
  const order = new Map(questions.map((q, i) => [q.id, i]));
  return answers
    .filter((a) => order.has(a.questionId))
    .sort((a, b) => order.get(a.questionId)! - order.get(b.questionId)!)
    .map((a) => ({ ...a, attempt }));
}
