import { randomUUID } from 'node:crypto';
import DataLoader from 'dataloader';
import { assertUuid, requireCourseMember, requireCourseTeacher } from '@lib/access.js';
import type { AnswerPublisher } from '@lib/answers/stream.js';
import type { AnswerQueue } from '@lib/answers/job.js';
import type { TokenBudget } from '@lib/answers/budget.js';
import { ANSWER_CONTROL_CHANNEL } from '@lib/answers/stream.js';
import { Prisma, sqlOf, type Message, type MessageFeedback } from '@lib/db/client.js';
import { appError, badInput, ErrorCode, forbidden, notFound, unauthenticated } from '@lib/errors.js';
import type { ConversationContext } from './conversations.js';

export const MAX_QUESTION_CHARS = 2000;
export const MAX_DOCUMENT_IDS = 100;
export const MAX_COMMENT_CHARS = 2000;
const MAX_PAGE = 100;
const TITLE_CHARS = 80;

export interface AnswerDeps {
  queue: AnswerQueue;
  budget: TokenBudget;
  publisher: AnswerPublisher;
  /** Publishes on the answer workers' control channel. */
  control: (channel: string, message: string) => Promise<unknown>;
  /** Records a new answer's row at the head of its stream (lib/answers/stream.ts `recordAnswerRow`). */
  recordRow: (messageId: string, row: object) => Promise<void>;
}

export interface MessageContext extends ConversationContext {
  answers: AnswerDeps;
  ratingByMessage: DataLoader<string, MessageFeedback | null>;
}

export interface AskTutorInput {
  courseId: string;
  conversationId?: string | null;
  question: string;
  documentIds?: string[] | null;
  mode?: 'EXPLAIN' | 'SOCRATIC' | null;
}

/** The caller's ratings of many messages in one query. */
export function createRatingLoader(prisma: ConversationContext['prisma'], userId: string) {
  return new DataLoader<string, MessageFeedback | null>(async (ids) => {
    const rows = await prisma.messageFeedback.findMany({ where: { userId, messageId: { in: [...ids] } } });
    const byId = new Map(rows.map((r) => [r.messageId, r]));
    return ids.map((id) => byId.get(id) ?? null);
  });
}

function titleFrom(question: string) {
  const flat = question.replace(/\s+/g, ' ').trim();
  return flat.length <= TITLE_CHARS ? flat : `${flat.slice(0, TITLE_CHARS - 1).trimEnd()}…`;
}

/**
 * Records the question and an answer to come, then queues the answer. The access checks and the
 * three writes (the conversation created or touched, the question, the answer) are one SQL
 * statement, a single round trip and atomic: no rows back means a check failed, and the checks
 * then run one by one to say which (the same errors, in the same order, as checking first).
 */
export async function askTutor(ctx: MessageContext, input: AskTutorInput): Promise<Message> {
  const courseId = assertUuid(input.courseId, 'courseId');
  const question = input.question.trim();
  if (question.length < 1 || question.length > MAX_QUESTION_CHARS) {
    throw badInput(`The question must be 1 to ${MAX_QUESTION_CHARS} characters`, 'question');
  }
  const documentIds = input.documentIds ? [...new Set(input.documentIds.map((id) => assertUuid(id, 'documentIds')))] : [];
  if (input.documentIds && (documentIds.length < 1 || documentIds.length > MAX_DOCUMENT_IDS)) {
    throw badInput(`Give 1 to ${MAX_DOCUMENT_IDS} documentIds, or none`, 'documentIds');
  }
  const conversationId = input.conversationId ? assertUuid(input.conversationId, 'conversationId') : null;
  if (!ctx.identity) throw unauthenticated();

  if (ctx.answers.budget.limit > 0) {
    const budget = await ctx.answers.budget.status(ctx.identity.userId);
    if (budget.exhausted) {
      await requireCourseMember(ctx, courseId); // a stranger is told so first
      throw appError(
        ErrorCode.RATE_LIMITED,
        `You have used today's tutor budget (${budget.limit} tokens); it resets at ${budget.resetsAt.toISOString()}`,
        { resetsAt: budget.resetsAt.toISOString(), limit: budget.limit },
      );
    }
  }

  const mode = input.mode ?? 'EXPLAIN';
  let answer = await recordQuestion(ctx, { courseId, conversationId, question, documentIds, mode });
  if (!answer) {
    // Which check failed: these throw as they would have before any write.
    await requireCourseMember(ctx, courseId);
    if (conversationId) {
      const conversation = await ctx.prisma.conversation.findUnique({ where: { id: conversationId } });
      if (!conversation || conversation.userId !== ctx.identity.userId) throw notFound('Conversation');
      if (conversation.courseId !== courseId) throw badInput('That conversation belongs to another course', 'conversationId');
    }
    // Every check passes now (a membership added meanwhile): once more.
    answer = await recordQuestion(ctx, { courseId, conversationId, question, documentIds, mode });
    if (!answer) throw forbidden('You are not a member of this course');
  }
  const messageId = answer.id;
  await Promise.all([
    ctx.answers.queue.enqueue({ messageId }).catch((err: unknown) => {
      // The answer worker's sweeper enqueues GENERATING answers whose job is missing.
      ctx.log.warn({ err, messageId }, 'answer enqueue failed; the sweeper will retry');
    }),
    // Alongside the enqueue (the job's way to the worker is not made longer): the row lets the
    // router start the asker's subscription without reading the message back through the gateway.
    ctx.answers.recordRow(messageId, answer).catch((err: unknown) => {
      ctx.log.warn({ err, messageId }, 'answer row not recorded; its stream reads the message through the gateway');
    }),
  ]);
  ctx.log.info({ messageId: answer.id, conversationId: answer.conversationId, courseId, mode }, 'tutor asked');
  return answer;
}

/**
 * The question and its answer-to-come, in one statement, if the caller is a member of the course
 * (or an admin) and the conversation, when given, is theirs and the course's; null otherwise. A
 * new conversation is titled after the question. The answer is created one millisecond after the
 * question, so the pair always sorts question first.
 */
async function recordQuestion(
  ctx: MessageContext,
  q: { courseId: string; conversationId: string | null; question: string; documentIds: string[]; mode: 'EXPLAIN' | 'SOCRATIC' },
): Promise<Message | null> {
  const { userId, role } = ctx.identity;
  const now = new Date();
  const answerAt = new Date(now.getTime() + 1);
  const conversation = q.conversationId
    ? Prisma.sql`UPDATE "Conversation" SET "updatedAt" = ${now}
        WHERE id = ${q.conversationId}::uuid AND "userId" = ${userId} AND "courseId" = ${q.courseId}::uuid
          AND EXISTS (SELECT 1 FROM allowed)
        RETURNING id`
    : Prisma.sql`INSERT INTO "Conversation" (id, "courseId", "userId", title, "createdAt", "updatedAt")
        SELECT ${randomUUID()}::uuid, ${q.courseId}::uuid, ${userId}, ${titleFrom(q.question)}, ${now}, ${now}
        WHERE EXISTS (SELECT 1 FROM allowed)
        RETURNING id`;
  // Straight on the pool (sqlOf): this and getMessage run for every question the tutor is asked.
  const rows = await sqlOf(ctx.prisma)<Message>(Prisma.sql`
    WITH allowed AS (
      SELECT 1 FROM "CourseMember" WHERE "courseId" = ${q.courseId}::uuid AND "userId" = ${userId}
      UNION ALL SELECT 1 WHERE ${role === 'ADMIN'}
    ), conversation AS (${conversation}),
    asked AS (
      INSERT INTO "Message" (id, "conversationId", "courseId", "userId", role, content, status, mode, "createdAt", "updatedAt")
      SELECT ${randomUUID()}::uuid, conversation.id, ${q.courseId}::uuid, ${userId}, 'USER', ${q.question}, 'COMPLETE',
        ${q.mode}::"TutorMode", ${now}, ${now}
      FROM conversation
      RETURNING id, "conversationId"
    )
    INSERT INTO "Message" (id, "conversationId", "courseId", "userId", role, status, mode, "replyToId", "documentIds", "createdAt", "updatedAt")
    SELECT ${randomUUID()}::uuid, asked."conversationId", ${q.courseId}::uuid, ${userId}, 'ASSISTANT', 'GENERATING',
      ${q.mode}::"TutorMode", asked.id, ${q.documentIds}::uuid[], ${answerAt}, ${answerAt}
    FROM asked
    RETURNING *`);
  return rows[0] ?? null;
}

/** A message of the caller's own conversations (any, for an admin). Strangers get NOT_FOUND. */
export async function getMessage(ctx: MessageContext, rawId: string): Promise<Message> {
  // Raw SQL on the pool (the same row, the same types as findUnique): the router reads every answer through here
  // as its stream starts (and once more at its end when the done event cannot answer the subscriber).
  const [message] = await sqlOf(ctx.prisma)<Message>(Prisma.sql`SELECT * FROM "Message" WHERE id = ${assertUuid(rawId)}::uuid`);
  if (!message || (message.userId !== ctx.identity.userId && ctx.identity.role !== 'ADMIN')) throw notFound('Message');
  return message;
}

/** Stops an answer being written. The worker writing it saves the text so far; a queued one ends at once. */
export async function cancelAnswer(ctx: MessageContext, rawId: string): Promise<Message> {
  const message = await getMessage(ctx, rawId);
  if (message.userId !== ctx.identity.userId) throw forbidden('Only the person who asked can stop an answer');
  if (message.role !== 'ASSISTANT') throw badInput('Only answers can be cancelled', 'messageId');
  if (message.status !== 'GENERATING') return message;
  const updated = await ctx.prisma.message.updateMany({
    where: { id: message.id, status: 'GENERATING' },
    data: { status: 'CANCELLED', completedAt: new Date() },
  });
  if (updated.count === 1) {
    await ctx.answers.control(ANSWER_CONTROL_CHANNEL, JSON.stringify({ type: 'cancel', messageId: message.id }));
    if (await ctx.answers.queue.removeIfWaiting(message.id)) {
      await ctx.answers.publisher.publish(message.id, { type: 'done', status: 'CANCELLED' });
    }
    ctx.log.info({ messageId: message.id }, 'answer cancelled');
  }
  return ctx.prisma.message.findUniqueOrThrow({ where: { id: message.id } });
}

export async function rateAnswer(ctx: MessageContext, rawId: string, helpful: boolean, rawComment?: string | null) {
  const message = await getMessage(ctx, rawId);
  if (message.userId !== ctx.identity.userId) throw forbidden('Only the person who asked can rate an answer');
  if (message.role !== 'ASSISTANT' || message.status !== 'COMPLETE') throw badInput('Only finished answers can be rated', 'messageId');
  const comment = rawComment?.trim() || null;
  if (comment && comment.length > MAX_COMMENT_CHARS) throw badInput(`A comment is at most ${MAX_COMMENT_CHARS} characters`, 'comment');
  await ctx.prisma.messageFeedback.upsert({
    where: { messageId_userId: { messageId: message.id, userId: ctx.identity.userId } },
    create: { messageId: message.id, userId: ctx.identity.userId, helpful, comment },
    update: { helpful, comment },
  });
  ctx.ratingByMessage.clear(message.id);
  return message;
}

function pageSize(first: number | null | undefined, fallback: number) {
  const n = first ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) throw badInput(`"first" must be 1 to ${MAX_PAGE}`, 'first');
  return n;
}

const encodeCursor = (at: Date, id: string) => Buffer.from(`${at.toISOString()}|${id}`).toString('base64url');
export function decodeCursor(cursor: string): { at: Date; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const date = new Date(at ?? '');
  if (!id || Number.isNaN(date.getTime())) throw badInput('Invalid cursor', 'after');
  return { at: date, id };
}

/** A conversation's messages, oldest first, by keyset on (createdAt, id). */
export async function listMessages(ctx: MessageContext, conversationId: string, args: { first?: number | null; after?: string | null }) {
  const first = pageSize(args.first, 50);
  const after = args.after ? decodeCursor(args.after) : null;
  const rows = await ctx.prisma.message.findMany({
    where: {
      conversationId,
      ...(after ? { OR: [{ createdAt: { gt: after.at } }, { createdAt: after.at, id: { gt: after.id } }] } : {}),
    },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    take: first + 1,
  });
  const page = rows.slice(0, first);
  const last = page[page.length - 1];
  return {
    edges: page.map((node) => ({ cursor: encodeCursor(node.createdAt, node.id), node })),
    pageInfo: { hasNextPage: rows.length > first, endCursor: last ? encodeCursor(last.createdAt, last.id) : null },
  };
}

/** Ratings of the course's answers, newest first, for its teachers. */
export async function tutorFeedback(ctx: MessageContext, courseId: string, args: { first?: number | null; after?: string | null }) {
  await requireCourseTeacher(ctx, courseId);
  const first = pageSize(args.first, 50);
  const after = args.after ? decodeCursor(args.after) : null;
  const rows = await ctx.prisma.messageFeedback.findMany({
    where: {
      message: { courseId },
      ...(after ? { OR: [{ createdAt: { lt: after.at } }, { createdAt: after.at, messageId: { lt: after.id } }] } : {}),
    },
    orderBy: [{ createdAt: 'desc' }, { messageId: 'desc' }],
    take: first,
    include: { message: { select: { content: true, replyToId: true } } },
  });
  const questionIds = rows.map((r) => r.message.replyToId).filter((id): id is string => id !== null);
  const questions = new Map(
    (await ctx.prisma.message.findMany({ where: { id: { in: questionIds } }, select: { id: true, content: true } })).map((m) => [
      m.id,
      m.content,
    ]),
  );
  return rows.map((r) => ({
    cursor: encodeCursor(r.createdAt, r.messageId),
    helpful: r.helpful,
    comment: r.comment,
    question: (r.message.replyToId && questions.get(r.message.replyToId)) ?? '',
    answer: r.message.content,
    userId: r.userId,
    createdAt: r.createdAt,
  }));
}

/** Stops answers being written (their conversation is being deleted). */
export async function stopAnswers(ctx: MessageContext, messageIds: string[]) {
  await ctx.prisma.message.updateMany({
    where: { id: { in: messageIds }, status: 'GENERATING' },
    data: { status: 'CANCELLED', completedAt: new Date() },
  });
  for (const messageId of messageIds) {
    await ctx.answers.control(ANSWER_CONTROL_CHANNEL, JSON.stringify({ type: 'cancel', messageId }));
    await ctx.answers.queue.removeIfWaiting(messageId);
    await ctx.answers.publisher.publish(messageId, { type: 'done', status: 'CANCELLED' });
  }
}
