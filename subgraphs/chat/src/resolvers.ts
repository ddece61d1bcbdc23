import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/index.js';
import { createMembershipLoader } from '@lib/access.js';
import type { Conversation, PrismaClient } from '@lib/db/client.js';
import { DateTime } from '@lib/scalars.js';
import type { SubgraphContext } from '@lib/subgraph-server.js';
import { createConversationLoader, getConversation, startConversation, type ConversationContext } from './conversations.js';

export interface ChatContext extends SubgraphContext, ConversationContext {}

export function createContextFactory(prisma: PrismaClient) {
  return (base: SubgraphContext): ChatContext => ({
    ...base,
    prisma,
    membership: createMembershipLoader(prisma, base.identity.userId),
    myConversationsByCourse: createConversationLoader(prisma, base.identity.userId),
  });
}

export const resolvers: GraphQLResolverMap<ChatContext> = {
  DateTime,
  Query: {
    conversation: (_: unknown, { id }: { id: string }, ctx: ChatContext) => getConversation(ctx, id),
  },
  Mutation: {
    startConversation: (_: unknown, a: { courseId: string; title?: string | null }, ctx: ChatContext) =>
      startConversation(ctx, a.courseId, a.title),
  },
  Conversation: {
    __resolveReference: (ref: { id: string }, ctx: ChatContext) => getConversation(ctx, ref.id),
    course: (c: Conversation) => ({ __typename: 'Course', id: c.courseId }),
  },
  Course: {
    // The rag subgraph has already checked access to the course; these are the caller's own rows.
    myConversations: (course: { id: string }, _: unknown, ctx: ChatContext) => ctx.myConversationsByCourse.load(course.id),
  },
};
