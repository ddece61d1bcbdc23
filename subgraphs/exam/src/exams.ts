import DataLoader from 'dataloader';
import { assertUuid, requireCourseMember, type AccessContext } from '@lib/access.js';
import { notFound } from '@lib/errors.js';
import type { Exam, PrismaClient } from '@lib/db/client.js';

export interface ExamContext extends AccessContext {
  prisma: PrismaClient;
  examsByCourse: DataLoader<string, Exam[]>;
}

export function createExamLoader(prisma: PrismaClient) {
  return new DataLoader<string, Exam[]>(async (courseIds) => {
    const rows = await prisma.exam.findMany({ where: { courseId: { in: [...courseIds] } }, orderBy: { createdAt: 'desc' } });
    const byCourse = new Map<string, Exam[]>();
    for (const row of rows) byCourse.set(row.courseId, [...(byCourse.get(row.courseId) ?? []), row]);
    return courseIds.map((id) => byCourse.get(id) ?? []);
  });
}

/** Drafts are for the course's teachers (and admins); students see what is published. */
async function seesDrafts(ctx: ExamContext, courseId: string) {
  const role = await requireCourseMember(ctx, courseId);
  return role === 'TEACHER' || ctx.identity.role === 'ADMIN';
}

export async function courseExams(ctx: ExamContext, courseId: string) {
  const drafts = await seesDrafts(ctx, courseId);
  const exams = await ctx.examsByCourse.load(courseId);
  return drafts ? exams : exams.filter((e) => e.publishedAt !== null);
}

export async function getExam(ctx: ExamContext, rawId: string) {
  const exam = await ctx.prisma.exam.findUnique({ where: { id: assertUuid(rawId) } });
  if (!exam) throw notFound('Exam');
  if (!(await seesDrafts(ctx, exam.courseId)) && exam.publishedAt === null) throw notFound('Exam');
  return exam;
}
