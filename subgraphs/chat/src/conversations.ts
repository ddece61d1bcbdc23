import DataLoader from 'dataloader';
import { assertUuid, requireCourseMember, type AccessContext } from '@lib/access.js';
import { badInput, notFound } from '@lib/errors.js';
import type { Conversation, PrismaClient } from '@lib/db/client.js';

export interface ConversationContext extends AccessContext {
  prisma: PrismaClient;
  myConversationsByCourse: DataLoader<string, Conversation[]>;
  log: import('@lib/logger.js').Logger;
}

export const MAX_TITLE_CHARS = 200;
const MAX_PAGE = 100;
/** A user's conversations read for one request, across courses; more than this per course is not paged through. */
const MAX_ROWS = 5000;

/** The caller's conversations for many courses in one query, most recently active first. */
export function createConversationLoader(prisma: PrismaClient, userId: string) {
  return new DataLoader<string, Conversation[]>(async (courseIds) => {
    const rows = await prisma.conversation.findMany({
      where: { userId, courseId: { in: [...courseIds] } },
      orderBy: [{ updatedAt: 'desc' }, { id: 'desc' }],
      take: MAX_ROWS,
    });
    const byCourse = new Map<string, Conversation[]>();
    for (const row of rows) byCourse.set(row.courseId, [...(byCourse.get(row.courseId) ?? []), row]);
    return courseIds.map((id) => byCourse.get(id) ?? []);
  });
}

/** One page of a course's conversations: `first` after the conversation `after`. */
export async function myConversations(ctx: ConversationContext, courseId: string, args: { first?: number | null; after?: string | null }) {
  const first = args.first ?? 20;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw badInput(`"first" must be 1 to ${MAX_PAGE}`, 'first');
  const all = await ctx.myConversationsByCourse.load(courseId);
  let start = 0;
  if (args.after) {
    const after = assertUuid(args.after, 'after');
    const index = all.findIndex((c) => c.id === after);
    if (index < 0) throw badInput('"after" is not one of your conversations in this course', 'after');
    start = index + 1;
  }
  return all.slice(start, start + first);
}

function cleanTitle(raw: string | null | undefined, fallback?: string) {
  const title = (raw ?? '').trim() || fallback;
  if (!title) throw badInput('A title is required', 'title');
  if (title.length > MAX_TITLE_CHARS) throw badInput(`Title must be at most ${MAX_TITLE_CHARS} characters`, 'title');
  return title;
}

export async function startConversation(ctx: ConversationContext, rawCourseId: string, rawTitle?: string | null) {
  const courseId = assertUuid(rawCourseId, 'courseId');
  const title = cleanTitle(rawTitle, 'New conversation');
  await requireCourseMember(ctx, courseId);
  return ctx.prisma.conversation.create({ data: { courseId, userId: ctx.identity.userId, title } });
}

/** One of the caller's conversations (any, for an admin); strangers get NOT_FOUND, as for a missing one. */
export async function getConversation(ctx: ConversationContext, rawId: string) {
  const conversation = await ctx.prisma.conversation.findUnique({ where: { id: assertUuid(rawId) } });
  if (!conversation || (conversation.userId !== ctx.identity.userId && ctx.identity.role !== 'ADMIN')) throw notFound('Conversation');
  return conversation;
}

async function ownConversation(ctx: ConversationContext, rawId: string) {
  const conversation = await ctx.prisma.conversation.findUnique({ where: { id: assertUuid(rawId) } });
  if (!conversation || conversation.userId !== ctx.identity.userId) throw notFound('Conversation');
  return conversation;
}

export async function renameConversation(ctx: ConversationContext, rawId: string, rawTitle: string) {
  const conversation = await ownConversation(ctx, rawId);
  return ctx.prisma.conversation.update({
    where: { id: conversation.id },
    data: { title: cleanTitle(rawTitle), updatedAt: new Date() },
  });
}

/**
 * Deletes a conversation and its messages. Answers still being written are
 * marked CANCELLED first, so their workers stop (`onGenerating` tells them).
 */
export async function deleteConversation(ctx: ConversationContext, rawId: string, onGenerating: (messageIds: string[]) => Promise<void>) {
  const conversation = await ownConversation(ctx, rawId);
  const generating = await ctx.prisma.message.findMany({
    where: { conversationId: conversation.id, status: 'GENERATING' },
    select: { id: true },
  });
  if (generating.length) await onGenerating(generating.map((m) => m.id));
  await ctx.prisma.conversation.delete({ where: { id: conversation.id } });
  ctx.log.info({ conversationId: conversation.id }, 'conversation deleted');
  return true;
}
