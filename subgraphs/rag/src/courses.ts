import DataLoader from 'dataloader';
import { requireCourseMember, requireCourseTeacher, assertUuid, type AccessContext, type CourseRole } from '@lib/access.js';
import { appError, badInput, ErrorCode, forbidden, notFound } from '@lib/errors.js';
import type { Identity } from '@lib/identity.js';
import { Prisma, sqlOf, type Course, type CourseMember, type PrismaClient } from '@lib/db/client.js';

export interface CourseContext extends AccessContext {
  prisma: PrismaClient;
  courses: DataLoader<string, Course | null>;
  members: DataLoader<string, CourseMember[]>;
}

/**
 * The course's `columns` once the caller passes `check` (requireCourseMember, requireCourseTeacher):
 * the row and the caller's role in it are read by one statement straight on the pool (every search
 * and every pasted note starts here), the role primed into the membership loader that `check`
 * asks. An unknown course is NOT_FOUND before a stranger is FORBIDDEN.
 */
export async function courseIfAllowed<T>(
  ctx: AccessContext & { prisma: PrismaClient },
  courseId: string,
  columns: Prisma.Sql,
  check: (ctx: AccessContext, courseId: string) => Promise<unknown>,
): Promise<T> {
  if (!ctx.identity) await check(ctx, courseId); // UNAUTHENTICATED
  const [row] = await sqlOf(ctx.prisma)<T & { callerRole: CourseRole | null }>(Prisma.sql`
    SELECT ${columns}, (SELECT role FROM "CourseMember" WHERE "courseId" = c.id AND "userId" = ${ctx.identity.userId}) AS "callerRole"
    FROM "Course" c WHERE c.id = ${courseId}::uuid`);
  if (!row) throw notFound('Course');
  const { callerRole, ...course } = row;
  ctx.membership.prime(courseId, callerRole);
  await check(ctx, courseId);
  return course as T;
}

const USER_ID = /^[\w.@:|-]{1,128}$/;
const MAX_MY_COURSES = 1000;

export function createCourseLoaders(prisma: PrismaClient) {
  return {
    courses: new DataLoader<string, Course | null>(async (ids) => {
      const rows = await prisma.course.findMany({ where: { id: { in: [...ids] } } });
      const byId = new Map(rows.map((c) => [c.id, c]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
    members: new DataLoader<string, CourseMember[]>(async (courseIds) => {
      const rows = await prisma.courseMember.findMany({
        where: { courseId: { in: [...courseIds] } },
        orderBy: [{ role: 'desc' }, { createdAt: 'asc' }],
      });
      const byCourse = new Map<string, CourseMember[]>();
      for (const m of rows) byCourse.set(m.courseId, [...(byCourse.get(m.courseId) ?? []), m]);
      return courseIds.map((id) => byCourse.get(id) ?? []);
    }),
  };
}

export function validateCourseInput(input: { title: string; description?: string | null }) {
  const title = input.title.trim();
  if (title.length < 1 || title.length > 200) throw badInput('Title must be 1 to 200 characters', 'title');
  const description = (input.description ?? '').trim();
  if (description.length > 5000) throw badInput('Description must be at most 5,000 characters', 'description');
  return { title, description };
}

export async function createCourse(prisma: PrismaClient, identity: Identity, input: { title: string; description?: string | null }) {
  if (identity.role === 'STUDENT') throw forbidden('Only teachers and admins can create courses');
  const data = validateCourseInput(input);
  return prisma.course.create({
    data: { ...data, createdBy: identity.userId, members: { create: { userId: identity.userId, role: 'TEACHER' } } },
  });
}

export async function getCourse(ctx: CourseContext, rawId: string) {
  const id = assertUuid(rawId);
  const course = await ctx.courses.load(id);
  if (!course) throw notFound('Course');
  await requireCourseMember(ctx, id);
  return course;
}

export async function myCourses(ctx: CourseContext) {
  const memberships = await ctx.prisma.courseMember.findMany({
    where: { userId: ctx.identity.userId },
    include: { course: true },
    orderBy: { course: { createdAt: 'desc' } },
    take: MAX_MY_COURSES,
  });
  for (const m of memberships) {
    ctx.courses.prime(m.courseId, m.course);
    ctx.membership.prime(m.courseId, m.role);
  }
  return memberships.map((m) => m.course);
}

export async function visibleMembers(ctx: CourseContext, courseId: string) {
  const myRole = await requireCourseMember(ctx, courseId);
  const members = await ctx.members.load(courseId);
  if (myRole === 'TEACHER' || ctx.identity.role === 'ADMIN') return members;
  return members.filter((m) => m.role === 'TEACHER' || m.userId === ctx.identity.userId);
}

export async function addCourseMember(ctx: CourseContext, rawCourseId: string, userId: string, role: CourseRole) {
  const courseId = assertUuid(rawCourseId, 'courseId');
  if (!USER_ID.test(userId)) throw badInput('userId must be 1 to 128 word characters', 'userId');
  if (!(await ctx.courses.load(courseId))) throw notFound('Course');
  await requireCourseTeacher(ctx, courseId);
  return ctx.prisma.$transaction(async (tx) => {
    if (role === 'STUDENT') await assertNotLastTeacher(tx, courseId, userId);
    return tx.courseMember.upsert({
      where: { courseId_userId: { courseId, userId } },
      create: { courseId, userId, role },
      update: { role },
    });
  });
}

export async function removeCourseMember(ctx: CourseContext, rawCourseId: string, userId: string) {
  const courseId = assertUuid(rawCourseId, 'courseId');
  if (!(await ctx.courses.load(courseId))) throw notFound('Course');
  // Members may leave on their own; removing someone else is for teachers.
  if (userId === ctx.identity.userId) await requireCourseMember(ctx, courseId);
  else await requireCourseTeacher(ctx, courseId);
  return ctx.prisma.$transaction(async (tx) => {
    await assertNotLastTeacher(tx, courseId, userId);
    const { count } = await tx.courseMember.deleteMany({ where: { courseId, userId } });
    return count > 0;
  });
}

type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/** A course always keeps a teacher: the last one cannot leave or be demoted. */
async function assertNotLastTeacher(tx: Tx, courseId: string, userId: string) {
  // Lock the course's teacher rows so two concurrent demotions cannot both pass.
  const teachers = await tx.$queryRaw<{ userId: string }[]>`
    SELECT "userId" FROM "CourseMember" WHERE "courseId" = ${courseId}::uuid AND role = 'TEACHER' FOR UPDATE`;
  if (teachers.length === 1 && teachers[0]?.userId === userId) {
    throw appError(ErrorCode.CONFLICT, 'A course must keep at least one teacher');
  }
}
