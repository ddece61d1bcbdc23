/**
 * Submission and grading of attempts: every question graded at once by
 * lib/exam's gradeAnswer (objective types exactly, short answers by key terms
 * and overlap with the reference, offline), one row per question stored with
 * its score and feedback, the attempt's total beside them.
 */
import { Prisma, type ExamAttempt, type PrismaClient } from '@lib/db/client.js';
import { gradeAnswer } from '@lib/exam/index.js';
import { answerValue, toDraft } from './rows.js';

/** Answers arriving this long after the deadline are still taken (network and clock slack). */
export const DEADLINE_GRACE_MS = 2000;

export function isExpired(a: Pick<ExamAttempt, 'status' | 'deadline'>, now = Date.now()): boolean {
  return a.status === 'IN_PROGRESS' && a.deadline !== null && now > a.deadline.getTime() + DEADLINE_GRACE_MS;
}

/** Submits the attempts among `rows` whose deadline has passed; true when there were any. */
export async function settleExpired(prisma: PrismaClient, rows: readonly ExamAttempt[]): Promise<boolean> {
  const expired = rows.filter((a) => isExpired(a));
  for (const a of expired) await submitAndGrade(prisma, a.id, true);
  return expired.length > 0;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/**
 * Grades an attempt and marks it SUBMITTED, under a lock on its row (so a
 * late answer or a second submission waits, then finds it submitted). False
 * when it was already submitted.
 */
export async function submitAndGrade(prisma: PrismaClient, attemptId: string, auto: boolean): Promise<boolean> {
  return prisma.$transaction(
    async (tx) => {
      const [row] = await tx.$queryRaw<{ status: string }[]>`SELECT status FROM "ExamAttempt" WHERE id = ${attemptId}::uuid FOR UPDATE`;
      if (row?.status !== 'IN_PROGRESS') return false;
      const attempt = await tx.examAttempt.findUniqueOrThrow({ where: { id: attemptId } });
      const questions = await tx.examQuestion.findMany({ where: { examId: attempt.examId }, orderBy: [{ position: 'asc' }] });
      const saved = new Map((await tx.examAnswer.findMany({ where: { attemptId } })).map((a) => [a.questionId, a]));
      let total = 0;
      const rows = questions.map((q) => {
        const a = saved.get(q.id);
        const g = gradeAnswer(toDraft(q), answerValue(a?.value ?? null));
        total += g.score;
        return {
          attemptId,
          questionId: q.id,
          value: a?.value === null || a?.value === undefined ? Prisma.DbNull : (a.value as Prisma.InputJsonValue),
          answeredAt: a?.answeredAt ?? null,
          correct: g.correct,
          score: round(g.score),
          feedback: g.feedback,
          matchedKeyTerms: g.matchedKeyTerms ?? [],
          missingKeyTerms: g.missingKeyTerms ?? [],
        };
      });
      await tx.examAnswer.deleteMany({ where: { attemptId } });
      if (rows.length) await tx.examAnswer.createMany({ data: rows });
      await tx.examAttempt.update({
        where: { id: attemptId },
        data: { status: 'SUBMITTED', submittedAt: new Date(), autoSubmitted: auto, score: round(total), maxScore: questions.length },
      });
      return true;
    },
    { timeout: 30_000, maxWait: 10_000 },
  );
}
