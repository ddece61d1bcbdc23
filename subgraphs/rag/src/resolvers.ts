import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/index.js';
import type { CourseRole } from '@lib/access.js';
import type { Course, CourseMember } from '@lib/db/client.js';
import { DateTime } from '@lib/scalars.js';
import type { RagContext } from './context.js';
import { addCourseMember, createCourse, getCourse, myCourses, removeCourseMember, visibleMembers } from './courses.js';

type Args<T> = T;

export const resolvers: GraphQLResolverMap<RagContext> = {
  DateTime,
  Query: {
    course: (_: unknown, { id }: Args<{ id: string }>, ctx: RagContext) => getCourse(ctx, id),
    myCourses: (_: unknown, __: unknown, ctx: RagContext) => myCourses(ctx),
  },
  Mutation: {
    createCourse: (_: unknown, { input }: Args<{ input: { title: string; description?: string | null } }>, ctx: RagContext) =>
      createCourse(ctx.prisma, ctx.identity, input),
    addCourseMember: (_: unknown, a: Args<{ courseId: string; userId: string; role: CourseRole }>, ctx: RagContext) =>
      addCourseMember(ctx, a.courseId, a.userId, a.role),
    removeCourseMember: (_: unknown, a: Args<{ courseId: string; userId: string }>, ctx: RagContext) =>
      removeCourseMember(ctx, a.courseId, a.userId),
  },
  Course: {
    __resolveReference: (ref: { id: string }, ctx: RagContext) => getCourse(ctx, ref.id),
    myRole: (course: Course, _: unknown, ctx: RagContext) => ctx.membership.load(course.id),
    members: (course: Course, _: unknown, ctx: RagContext) => visibleMembers(ctx, course.id),
  },
  CourseMember: {
    joinedAt: (m: CourseMember) => m.createdAt,
  },
};
