import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/index.js';
import { createMembershipLoader } from '@lib/access.js';
import type { Exam, PrismaClient } from '@lib/db/client.js';
import { DateTime } from '@lib/scalars.js';
import type { SubgraphContext } from '@lib/subgraph-server.js';
import { courseExams, createExamLoader, getExam, type ExamContext } from './exams.js';

export interface ExamSubgraphContext extends SubgraphContext, ExamContext {}

export function createContextFactory(prisma: PrismaClient) {
  return (base: SubgraphContext): ExamSubgraphContext => ({
    ...base,
    prisma,
    membership: createMembershipLoader(prisma, base.identity.userId),
    examsByCourse: createExamLoader(prisma),
  });
}

export const resolvers: GraphQLResolverMap<ExamSubgraphContext> = {
  DateTime,
  Query: {
    exam: (_: unknown, { id }: { id: string }, ctx: ExamSubgraphContext) => getExam(ctx, id),
  },
  Exam: {
    __resolveReference: (ref: { id: string }, ctx: ExamSubgraphContext) => getExam(ctx, ref.id),
    course: (e: Exam) => ({ __typename: 'Course', id: e.courseId }),
  },
  Course: {
    exams: (course: { id: string }, _: unknown, ctx: ExamSubgraphContext) => courseExams(ctx, course.id),
  },
};
