import DataLoader from 'dataloader';
import type { Identity } from './identity.js';
import { forbidden, badInput, unauthenticated } from './errors.js';
import type { PrismaClient } from './db/client.js';

export type CourseRole = 'STUDENT' | 'TEACHER';

/**
 * The caller's role in each course, batched per request: checking access to
 * fifty courses costs one query, not fifty.
 */
export function createMembershipLoader(prisma: PrismaClient, userId: string) {
  return new DataLoader<string, CourseRole | null>(async (courseIds) => {
    const rows = await prisma.courseMember.findMany({
      where: { userId, courseId: { in: [...courseIds] } },
      select: { courseId: true, role: true },
    });
    const byCourse = new Map(rows.map((r) => [r.courseId, r.role]));
    return courseIds.map((id) => byCourse.get(id) ?? null);
  });
}
export type MembershipLoader = ReturnType<typeof createMembershipLoader>;

export interface AccessContext {
  identity: Identity;
  membership: MembershipLoader;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids are UUIDs; anything else is the caller's mistake, reported before any query. */
export const isUuid = (id: string) => UUID.test(id);

export function assertUuid(id: string, field = 'id'): string {
  if (!UUID.test(id)) throw badInput(`"${field}" must be a UUID`, field);
  return id.toLowerCase();
}

/** Members read a course; admins read every course. Returns the caller's role there (null for an admin who is not a member). */
export async function requireCourseMember(ctx: AccessContext, courseId: string): Promise<CourseRole | null> {
  if (!ctx.identity) throw unauthenticated();
  const role = await ctx.membership.load(courseId);
  if (role) return role;
  if (ctx.identity.role === 'ADMIN') return null;
  throw forbidden('You are not a member of this course');
}

/** Teachers of the course (and admins) manage it. */
export async function requireCourseTeacher(ctx: AccessContext, courseId: string): Promise<void> {
  const role = await requireCourseMember(ctx, courseId);
  if (role === 'TEACHER' || ctx.identity.role === 'ADMIN') return;
  throw forbidden('Only the course’s teachers can do this');
}
