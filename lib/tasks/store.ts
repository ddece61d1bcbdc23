import type { Prisma, PrismaClient, Task } from '../db/client.js';
import type { TaskEventPublisher } from './events.js';

type Db = PrismaClient | Prisma.TransactionClient;
export type TaskStatus = Task['status'];
export const TERMINAL: readonly TaskStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];
export const isTerminal = (status: TaskStatus) => TERMINAL.includes(status);

/**
 * Task state lives in Postgres; every change is written first, then announced
 * on the event stream. Each transition names the states it may start from, so
 * a late worker cannot revive a cancelled task and a retry cannot touch a
 * running one.
 */
export function createTaskStore(prisma: PrismaClient, events: TaskEventPublisher) {
  const announce = async (task: Task | null) => {
    if (task)
      await events.publish({
        taskId: task.id,
        ownerId: task.ownerId,
        courseId: task.courseId,
        status: task.status,
        progress: task.progress,
      });
    return task;
  };
  const transition = async (db: Db, id: string, from: TaskStatus[], data: Prisma.TaskUpdateManyMutationInput) => {
    const { count } = await db.task.updateMany({ where: { id, status: { in: from } }, data });
    return count === 1 ? db.task.findUnique({ where: { id } }) : null;
  };

  return {
    announce,
    get: (id: string) => prisma.task.findUnique({ where: { id } }),

    /** A worker takes the task (again, after a crash): null if it was cancelled or is already done. */
    start: async (id: string, attempt: number) =>
      announce(
        await prisma.$transaction(async (tx) => {
          const task = await tx.task.findUnique({ where: { id } });
          if (!task || isTerminal(task.status)) return null;
          return transition(tx, id, ['ACCEPTED', 'RUNNING'], {
            status: 'RUNNING',
            attempts: attempt,
            startedAt: task.startedAt ?? new Date(),
            progress: 0,
            message: attempt > 1 ? `Started again (attempt ${attempt})` : 'Started',
          });
        }),
      ),

    progress: async (id: string, progress: number, message: string) =>
      announce(await transition(prisma, id, ['RUNNING'], { progress: Math.min(1, Math.max(0, progress)), message })),

    /** Completion inside the caller's transaction (with the work's own writes); announce after commit. */
    completeIn: (tx: Prisma.TransactionClient, id: string, message: string) =>
      transition(tx, id, ['RUNNING'], {
        status: 'COMPLETED',
        progress: 1,
        message,
        finishedAt: new Date(),
        errorCode: null,
        errorMessage: null,
      }),

    fail: async (id: string, code: string, message: string) =>
      announce(
        await transition(prisma, id, ['ACCEPTED', 'RUNNING'], {
          status: 'FAILED',
          message: 'Failed',
          errorCode: code,
          errorMessage: message,
          finishedAt: new Date(),
        }),
      ),

    cancel: async (id: string) =>
      announce(
        await transition(prisma, id, ['ACCEPTED', 'RUNNING'], { status: 'CANCELLED', message: 'Cancelled', finishedAt: new Date() }),
      ),

    /** FAILED back to ACCEPTED, for a new run. */
    reset: async (id: string) =>
      transition(prisma, id, ['FAILED'], {
        status: 'ACCEPTED',
        progress: 0,
        message: 'Queued again',
        errorCode: null,
        errorMessage: null,
        finishedAt: null,
        startedAt: null,
      }),
  };
}
export type TaskStore = ReturnType<typeof createTaskStore>;
