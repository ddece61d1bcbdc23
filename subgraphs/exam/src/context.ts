/**
 * The exam subgraph's request context: its dependencies, one DataLoader per
 * thing read (exams, questions, attempts, answers, passages), and what the
 * caller may see of each exam (`views`).
 */
import DataLoader from 'dataloader';
import { createMembershipLoader, type AccessContext } from '@lib/access.js';
import type { Exam, ExamAnswer, ExamAttempt, ExamQuestion, PrismaClient } from '@lib/db/client.js';
import type { ExamPassage } from '@lib/exam/index.js';
import type { JobQueues } from '@lib/jobs/queues.js';
import type { TaskStore } from '@lib/tasks/store.js';
import type { SubgraphContext } from '@lib/subgraph-server.js';
import { settleExpired } from './grading.js';
import { toPassage } from '@lib/exam/store.js';

export interface ExamDeps {
  queues: JobQueues;
  tasks: TaskStore;
}

/**
 * What the caller sees of an exam:
 * - TEACHER (a teacher of the course, or an admin): everything;
 * - STUDENT: `running` while an attempt of theirs is in progress (then nothing graded, no key, no
 *   source); otherwise, once they have submitted an attempt, `results` (scores, correctness, the
 *   source page) and, when the exam's showAnswers allows, `answers` (keys, explanations, sentences).
 */
export type View = { teacher: true } | { teacher: false; running: boolean; results: boolean; answers: boolean };

export interface ExamContext extends SubgraphContext, AccessContext {
  prisma: PrismaClient;
  deps: ExamDeps;
  exams: DataLoader<string, Exam | null>;
  examsByTask: DataLoader<string, Exam | null>;
  examsByCourse: DataLoader<string, Exam[]>;
  questionsByExam: DataLoader<string, ExamQuestion[]>;
  /** The caller's attempts by exam, oldest first (expired ones submitted first). */
  myAttemptsByExam: DataLoader<string, ExamAttempt[]>;
  /** Every attempt by exam, oldest first (expired ones submitted first). */
  attemptsByExam: DataLoader<string, ExamAttempt[]>;
  attempts: DataLoader<string, ExamAttempt | null>;
  answersByAttempt: DataLoader<string, ExamAnswer[]>;
  /** Passages of ready documents, by chunk id. */
  passages: DataLoader<string, ExamPassage | null>;
  views: DataLoader<string, View>;
}

function groupBy<T, K>(rows: T[], key: (row: T) => K): Map<K, T[]> {
  const map = new Map<K, T[]>();
  for (const row of rows) {
    const k = key(row);
    const list = map.get(k);
    if (list) list.push(row);
    else map.set(k, [row]);
  }
  return map;
}

function byIdLoader<T>(load: (ids: string[]) => Promise<T[]>, key: (row: T) => string | null) {
  return new DataLoader<string, T | null>(async (ids) => {
    const rows = await load([...ids]);
    const map = new Map(rows.map((r) => [key(r), r]));
    return ids.map((id) => map.get(id) ?? null);
  });
}

/** Answers shown to students who have submitted, by the exam's rule. */
export function answersAllowed(exam: Pick<Exam, 'showAnswers' | 'closesAt'>, now = Date.now()): boolean {
  if (exam.showAnswers === 'AFTER_SUBMIT') return true;
  if (exam.showAnswers === 'AFTER_CLOSE') return exam.closesAt !== null && exam.closesAt.getTime() <= now;
  return false;
}

export function createContextFactory(prisma: PrismaClient, deps: ExamDeps) {
  return (base: SubgraphContext): ExamContext => {
    const userId = base.identity.userId;
    const attemptsLoader = (mine: boolean) =>
      new DataLoader<string, ExamAttempt[]>(async (examIds) => {
        const where = { examId: { in: [...examIds] }, ...(mine ? { userId } : {}) };
        let rows = await prisma.examAttempt.findMany({ where, orderBy: [{ startedAt: 'asc' }, { number: 'asc' }] });
        // An attempt past its deadline is submitted when next touched.
        if (await settleExpired(prisma, rows))
          rows = await prisma.examAttempt.findMany({ where, orderBy: [{ startedAt: 'asc' }, { number: 'asc' }] });
        for (const row of rows) ctx.attempts.prime(row.id, row);
        const map = groupBy(rows, (r) => r.examId);
        return examIds.map((id) => map.get(id) ?? []);
      });
    const ctx: ExamContext = {
      ...base,
      prisma,
      deps,
      membership: createMembershipLoader(prisma, userId),
      exams: byIdLoader(
        (ids) => prisma.exam.findMany({ where: { id: { in: ids } } }),
        (e) => e.id,
      ),
      examsByTask: byIdLoader(
        (ids) => prisma.exam.findMany({ where: { taskId: { in: ids } } }),
        (e) => e.taskId,
      ),
      examsByCourse: new DataLoader(async (courseIds) => {
        const rows = await prisma.exam.findMany({
          where: { courseId: { in: [...courseIds] } },
          orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        });
        for (const row of rows) ctx.exams.prime(row.id, row);
        const map = groupBy(rows, (r) => r.courseId);
        return courseIds.map((id) => map.get(id) ?? []);
      }),
      questionsByExam: new DataLoader(async (examIds) => {
        const rows = await prisma.examQuestion.findMany({
          where: { examId: { in: [...examIds] } },
          orderBy: [{ position: 'asc' }, { createdAt: 'asc' }],
        });
        const map = groupBy(rows, (r) => r.examId);
        return examIds.map((id) => map.get(id) ?? []);
      }),
      myAttemptsByExam: attemptsLoader(true),
      attemptsByExam: attemptsLoader(false),
      attempts: byIdLoader(
        (ids) => prisma.examAttempt.findMany({ where: { id: { in: ids } } }),
        (a) => a.id,
      ),
      answersByAttempt: new DataLoader(async (attemptIds) => {
        const rows = await prisma.examAnswer.findMany({ where: { attemptId: { in: [...attemptIds] } } });
        const map = groupBy(rows, (r) => r.attemptId);
        return attemptIds.map((id) => map.get(id) ?? []);
      }),
      passages: byIdLoader(
        async (ids) =>
          (
            await prisma.chunk.findMany({
              where: { id: { in: ids }, document: { status: 'READY' } },
              select: { id: true, documentId: true, pageStart: true, pageEnd: true, text: true, document: { select: { title: true } } },
            })
          ).map(toPassage),
        (p) => p.chunkId,
      ),
      views: new DataLoader((examIds) => Promise.all(examIds.map((id) => computeView(ctx, id).catch((err: unknown) => err as Error)))),
    };
    return ctx;
  };
}

async function computeView(ctx: ExamContext, examId: string): Promise<View> {
  const exam = await ctx.exams.load(examId);
  if (!exam) return { teacher: false, running: false, results: false, answers: false };
  const role = await ctx.membership.load(exam.courseId);
  if (role === 'TEACHER' || ctx.identity.role === 'ADMIN') return { teacher: true };
  const mine = await ctx.myAttemptsByExam.load(examId);
  const running = mine.some((a) => a.status === 'IN_PROGRESS');
  const results = !running && mine.some((a) => a.status === 'SUBMITTED');
  return { teacher: false, running, results, answers: results && answersAllowed(exam) };
}
