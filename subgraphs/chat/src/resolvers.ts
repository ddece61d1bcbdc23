import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/index.js';
import type { Redis } from 'ioredis';
import { createMembershipLoader } from '@lib/access.js';
import { messageCitations, messageError, messageUsage } from '@lib/answers/message-view.js';
import type { Conversation, Message, PrismaClient } from '@lib/db/client.js';
import { DateTime } from '@lib/scalars.js';
import type { SubgraphContext } from '@lib/subgraph-server.js';
import {
  createConversationLoader,
  deleteConversation,
  getConversation,
  myConversations,
  renameConversation,
  startConversation,
} from './conversations.js';
import {
  askTutor,
  cancelAnswer,
  createRatingLoader,
  getMessage,
  listMessages,
  rateAnswer,
  stopAnswers,
  tutorFeedback,
  type AnswerDeps,
  type AskTutorInput,
  type MessageContext,
} from './messages.js';

export interface ChatContext extends SubgraphContext, MessageContext {}

export function createContextFactory(prisma: PrismaClient, answers: AnswerDeps) {
  return (base: SubgraphContext): ChatContext => ({
    ...base,
    prisma,
    answers,
    membership: createMembershipLoader(prisma, base.identity.userId),
    myConversationsByCourse: createConversationLoader(prisma, base.identity.userId),
    ratingByMessage: createRatingLoader(prisma, base.identity.userId),
  });
}

/** Publishing on the control channel, from a Redis connection. */
export const controlFrom = (redis: Redis) => (channel: string, message: string) => redis.publish(channel, message);

type Page = { first?: number | null; after?: string | null };

export const resolvers: GraphQLResolverMap<ChatContext> = {
  DateTime,
  Query: {
    conversation: (_: unknown, { id }: { id: string }, ctx: ChatContext) => getConversation(ctx, id),
    message: (_: unknown, { id }: { id: string }, ctx: ChatContext) => getMessage(ctx, id),
  },
  Mutation: {
    startConversation: (_: unknown, a: { courseId: string; title?: string | null }, ctx: ChatContext) =>
      startConversation(ctx, a.courseId, a.title),
    askTutor: (_: unknown, { input }: { input: AskTutorInput }, ctx: ChatContext) => askTutor(ctx, input),
    cancelAnswer: (_: unknown, { messageId }: { messageId: string }, ctx: ChatContext) => cancelAnswer(ctx, messageId),
    rateAnswer: (_: unknown, a: { messageId: string; helpful: boolean; comment?: string | null }, ctx: ChatContext) =>
      rateAnswer(ctx, a.messageId, a.helpful, a.comment),
    renameConversation: (_: unknown, a: { id: string; title: string }, ctx: ChatContext) => renameConversation(ctx, a.id, a.title),
    deleteConversation: (_: unknown, { id }: { id: string }, ctx: ChatContext) =>
      deleteConversation(ctx, id, (ids) => stopAnswers(ctx, ids)),
  },
  Conversation: {
    __resolveReference: (ref: { id: string }, ctx: ChatContext) => getConversation(ctx, ref.id),
    course: (c: Conversation) => ({ __typename: 'Course', id: c.courseId }),
    messages: (c: Conversation, args: Page, ctx: ChatContext) => listMessages(ctx, c.id, args),
  },
  Message: {
    __resolveReference: (ref: { id: string }, ctx: ChatContext) => getMessage(ctx, ref.id),
    conversation: (m: Message, _: unknown, ctx: ChatContext) => getConversation(ctx, m.conversationId),
    citations: (m: Message) => messageCitations(m),
    usage: (m: Message) => messageUsage(m),
    error: (m: Message) => messageError(m),
    myRating: (m: Message, _: unknown, ctx: ChatContext) => ctx.ratingByMessage.load(m.id),
  },
  Course: {
    // The rag subgraph has already checked access to the course; these are the caller's own rows.
    myConversations: (course: { id: string }, args: Page, ctx: ChatContext) => myConversations(ctx, course.id, args),
    tutorFeedback: (course: { id: string }, args: Page, ctx: ChatContext) => tutorFeedback(ctx, course.id, args),
  },
};
