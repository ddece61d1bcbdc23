import DataLoader from 'dataloader';
import { assertUuid, requireCourseMember, type AccessContext } from '@lib/access.js';
import { badInput, forbidden, notFound } from '@lib/errors.js';
import type { Conversation, PrismaClient } from '@lib/db/client.js';

export interface ConversationContext extends AccessContext {
  prisma: PrismaClient;
  myConversationsByCourse: DataLoader<string, Conversation[]>;
}

const PER_COURSE = 100;

/** The caller's conversations for many courses in one query. */
export function createConversationLoader(prisma: PrismaClient, userId: string) {
  return new DataLoader<string, Conversation[]>(async (courseIds) => {
    const rows = await prisma.conversation.findMany({
      where: { userId, courseId: { in: [...courseIds] } },
      orderBy: { createdAt: 'desc' },
    });
    const byCourse = new Map<string, Conversation[]>();
    for (const row of rows) {
      const list = byCourse.get(row.courseId) ?? [];
      if (list.length < PER_COURSE) list.push(row);
      byCourse.set(row.courseId, list);
    }
    return courseIds.map((id) => byCourse.get(id) ?? []);
  });
}

export async function startConversation(ctx: ConversationContext, rawCourseId: string, rawTitle?: string | null) {
  const courseId = assertUuid(rawCourseId, 'courseId');
  const title = (rawTitle ?? '').trim() || 'New conversation';
  if (title.length > 200) throw badInput('Title must be at most 200 characters', 'title');
  await requireCourseMember(ctx, courseId);
  return ctx.prisma.conversation.create({ data: { courseId, userId: ctx.identity.userId, title } });
}

export async function getConversation(ctx: ConversationContext, rawId: string) {
  const conversation = await ctx.prisma.conversation.findUnique({ where: { id: assertUuid(rawId) } });
  if (!conversation) throw notFound('Conversation');
  if (conversation.userId !== ctx.identity.userId && ctx.identity.role !== 'ADMIN') throw forbidden('This is not your conversation');
  return conversation;
}
