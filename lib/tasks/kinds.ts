import type { Prisma, Task } from '../db/client.js';

/**
 * What a task's subject needs when the task ends without its worker's help
 * (cancelled before a worker took it, or failed after a crash). One entry per
 * task kind: the type makes a missing kind a compile error.
 */
export const onTaskAbandoned: Record<
  Task['kind'],
  (tx: Prisma.TransactionClient, task: Pick<Task, 'id'>, code: string, message: string) => Promise<unknown>
> = {
  INGEST_DOCUMENT: (tx, task, code, message) =>
    tx.document.updateMany({
      where: { taskId: task.id, status: 'PROCESSING' },
      data: { status: 'FAILED', errorCode: code, errorMessage: message },
    }),
  // A re-index leaves the existing index in place until it has a complete new one: nothing to undo.
  REINDEX_COURSE: async () => undefined,
  // The exam stays, FAILED with the reason, until a retry or deleteExam.
  GENERATE_EXAM: (tx, task, code, message) =>
    tx.exam.updateMany({
      where: { taskId: task.id, status: 'GENERATING' },
      data: { status: 'FAILED', errorCode: code, errorMessage: message },
    }),
};

/** What a task's subject needs when a failed task is queued again. */
export const onTaskRetried: Record<Task['kind'], (tx: Prisma.TransactionClient, task: Pick<Task, 'id'>) => Promise<unknown>> = {
  INGEST_DOCUMENT: (tx, task) =>
    tx.document.updateMany({
      where: { taskId: task.id, status: 'FAILED' },
      data: { status: 'PROCESSING', errorCode: null, errorMessage: null },
    }),
  REINDEX_COURSE: async () => undefined,
  GENERATE_EXAM: (tx, task) =>
    tx.exam.updateMany({
      where: { taskId: task.id, status: 'FAILED' },
      data: { status: 'GENERATING', errorCode: null, errorMessage: null },
    }),
};
