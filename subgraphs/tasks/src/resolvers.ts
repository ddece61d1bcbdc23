import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/index.js';
import { createMembershipLoader } from '@lib/access.js';
import type { PrismaClient, Task } from '@lib/db/client.js';
import { DateTime } from '@lib/scalars.js';
import type { SubgraphContext } from '@lib/subgraph-server.js';
import { cancelTask, createTaskLoader, getTask, myTasks, retryTask, type TaskContext, type TaskDeps } from './tasks.js';
import { taskError } from '@lib/tasks/view.js';

export interface TasksContext extends SubgraphContext, TaskContext {}

export function createContextFactory(prisma: PrismaClient, taskDeps: TaskDeps) {
  return (base: SubgraphContext): TasksContext => ({
    ...base,
    prisma,
    taskDeps,
    membership: createMembershipLoader(prisma, base.identity.userId),
    tasks: createTaskLoader(prisma),
  });
}

export const resolvers: GraphQLResolverMap<TasksContext> = {
  DateTime,
  Query: {
    task: (_: unknown, { id }: { id: string }, ctx: TasksContext) => getTask(ctx, id),
    myTasks: (_: unknown, args: Parameters<typeof myTasks>[1], ctx: TasksContext) => myTasks(ctx, args),
  },
  Mutation: {
    cancelTask: (_: unknown, { id }: { id: string }, ctx: TasksContext) => cancelTask(ctx, id),
    retryTask: (_: unknown, { id }: { id: string }, ctx: TasksContext) => retryTask(ctx, id),
  },
  Task: {
    __resolveReference: (ref: { id: string }, ctx: TasksContext) => getTask(ctx, ref.id),
    error: (task: Task) => taskError(task),
    course: (task: Task) => ({ __typename: 'Course', id: task.courseId }),
  },
};
