import DataLoader from 'dataloader';
import { assertUuid, requireCourseTeacher, type AccessContext } from '@lib/access.js';
import type { PrismaClient, Task } from '@lib/db/client.js';
import { appError, badInput, ErrorCode, notFound } from '@lib/errors.js';
import { jobs, type JobName } from '@lib/jobs/contracts.js';
import type { JobQueues } from '@lib/jobs/queues.js';
import type { Logger } from '@lib/logger.js';
import { onTaskAbandoned, onTaskRetried } from '@lib/tasks/kinds.js';
import type { TaskStore } from '@lib/tasks/store.js';

export interface TaskDeps {
  queues: JobQueues;
  store: TaskStore;
}

export interface TaskContext extends AccessContext {
  prisma: PrismaClient;
  taskDeps: TaskDeps;
  tasks: DataLoader<string, Task | null>;
}

export function createTaskLoader(prisma: PrismaClient) {
  return new DataLoader<string, Task | null>(async (ids) => {
    const rows = await prisma.task.findMany({ where: { id: { in: [...ids] } } });
    const byId = new Map(rows.map((t) => [t.id, t]));
    return ids.map((id) => byId.get(id) ?? null);
  });
}

/** The owner, the course's teachers and admins see a task; nobody else learns it exists. */
export async function canSeeTask(ctx: AccessContext, task: Pick<Task, 'ownerId' | 'courseId'>): Promise<boolean> {
  if (ctx.identity.role === 'ADMIN' || task.ownerId === ctx.identity.userId) return true;
  try {
    await requireCourseTeacher(ctx, task.courseId);
    return true;
  } catch {
    return false;
  }
}

export async function getTask(ctx: TaskContext, rawId: string): Promise<Task> {
  const task = await ctx.tasks.load(assertUuid(rawId));
  if (!task) throw notFound('Task');
  // Someone who may not see a task gets the same answer as for a task that does not exist.
  if (!(await canSeeTask(ctx, task))) throw notFound('Task');
  return task;
}

const MAX_PAGE = 100;
const encodeCursor = (t: Task) => Buffer.from(`${t.createdAt.toISOString()}|${t.id}`).toString('base64url');
function decodeCursor(cursor: string) {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const date = new Date(at ?? '');
  if (!id || Number.isNaN(date.getTime())) throw badInput('Invalid cursor', 'after');
  return { createdAt: date, id: assertUuid(id, 'after') };
}

/** Keyset pagination on (createdAt, id), newest first: stable under inserts, no OFFSET scans. */
export async function myTasks(ctx: TaskContext, args: { status?: Task['status'] | null; first?: number | null; after?: string | null }) {
  const first = args.first ?? 20;
  if (first < 1 || first > MAX_PAGE) throw badInput(`first must be 1 to ${MAX_PAGE}`, 'first');
  const after = args.after ? decodeCursor(args.after) : null;
  const rows = await ctx.prisma.task.findMany({
    where: {
      ownerId: ctx.identity.userId,
      ...(args.status ? { status: args.status } : {}),
      ...(after ? { OR: [{ createdAt: { lt: after.createdAt } }, { createdAt: after.createdAt, id: { lt: after.id } }] } : {}),
    },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    take: first + 1,
  });
  const page = rows.slice(0, first);
  for (const t of page) ctx.tasks.prime(t.id, t);
  return {
    edges: page.map((node) => ({ cursor: encodeCursor(node), node })),
    pageInfo: { hasNextPage: rows.length > first, endCursor: page.length ? encodeCursor(page[page.length - 1]!) : null },
  };
}

export async function cancelTask(ctx: TaskContext, rawId: string): Promise<Task> {
  const task = await getTask(ctx, rawId);
  const cancelled = await ctx.taskDeps.store.cancel(task.id);
  if (!cancelled) throw appError(ErrorCode.CONFLICT, `The task is already ${task.status.toLowerCase()}`);
  // Not yet taken by a worker: remove the job and settle the subject here. A running job is
  // aborted by its worker, which hears the CANCELLED event and discards what it wrote.
  if (await ctx.taskDeps.queues.removeIfWaiting(task.kind as JobName, task.id)) {
    await ctx.prisma.$transaction((tx) => onTaskAbandoned[task.kind](tx, task, 'CANCELLED', 'Cancelled before it started.'));
  }
  return cancelled;
}

/**
 * FAILED back to ACCEPTED, and its job run again whatever state it is in (lib/jobs/queues.ts):
 * a retry in the moment after a handler marked the task FAILED, before BullMQ failed its job,
 * waits for the job to settle. A task left ACCEPTED without a job to run it (the job still
 * active after that wait, or Redis failing here) is requeued by the workers' reconciler.
 */
export async function retryTask(ctx: TaskContext & { log?: Logger }, rawId: string): Promise<Task> {
  const task = await getTask(ctx, rawId);
  const reset = await ctx.taskDeps.store.reset(task.id);
  if (!reset) throw appError(ErrorCode.CONFLICT, `Only failed tasks can be retried; this one is ${task.status.toLowerCase()}`);
  await ctx.prisma.$transaction((tx) => onTaskRetried[task.kind](tx, task));
  const name = task.kind as JobName;
  try {
    const outcome = await ctx.taskDeps.queues.requeue(name, jobs[name].payload.parse(task.payload));
    if (outcome === 'active')
      ctx.log?.warn({ taskId: task.id }, 'retried task’s previous job still active; the reconciler will requeue it');
  } catch (err) {
    ctx.log?.error({ err, taskId: task.id }, 'requeue failed; the reconciler will requeue the task');
  }
  await ctx.taskDeps.store.announce(reset);
  return reset;
}
