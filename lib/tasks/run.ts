import { UnrecoverableError } from 'bullmq';
import type { Prisma, PrismaClient, Task } from '../db/client.js';
import type { Logger } from '../logger.js';
import { onTaskAbandoned } from './kinds.js';
import type { TaskStore } from './store.js';

/** The abort reason the worker's runner gives when a task is cancelled (other reasons hand the job back). */
export const CANCELLED = 'CANCELLED';

/** What a worker's handler is given with its job. */
export interface TaskRunContext {
  job: { attemptsStarted: number };
  log: Logger;
  /** Aborted when the task is cancelled (reason CANCELLED) or the worker is forced to stop. */
  signal: AbortSignal;
}

export interface TaskRun {
  /** Progress: writes are throttled (`progressIntervalMs`, unless `force`) and serialised so they never overtake each other. */
  report(progress: number, message: string, force?: boolean): Promise<unknown>;
  /** Waits for the progress writes under way. */
  flush(): Promise<unknown>;
  /**
   * Runs `write` in a transaction. `write` begins with the task's completion (store.completeIn):
   * its UPDATE takes the task row and completes it only if it is still RUNNING, so a cancel that
   * got in first wins and two runs cannot both complete; then the work's own writes, under that
   * lock (or with the completion, as its `alongside` statements). `write` returns the completed
   * task, or null (completeIn's null: nothing is saved, the transaction rolls back). The completed
   * task is announced after the commit. 'cancelled': the task was cancelled meanwhile; 'finished':
   * another run (a stalled lock taken over) finished it, or `write` saved nothing. `prepare` runs
   * first in the same transaction, without the lock (a cancel is not held up meanwhile): work
   * written as it is produced, rolled back with the rest when the task turns out not to be
   * RUNNING any more.
   */
  complete(
    write: (tx: Prisma.TransactionClient) => Promise<Task | null>,
    timeoutMs: number,
    prepare?: (tx: Prisma.TransactionClient) => Promise<void>,
  ): Promise<Task | 'cancelled' | 'finished'>;
  /** If the task was cancelled, settles its subject (onTaskAbandoned with CANCELLED). */
  settleIfCancelled(): Promise<void>;
  /** Settles the task's subject as abandoned with this code (onTaskAbandoned). */
  abandon(code: string, message: string): Promise<void>;
}

export interface TaskRunSpec<S> {
  kind: Task['kind'];
  taskId: string;
  /** The task's subject (its document, its exam); null: deleted, the task fails NOT_FOUND. */
  load: () => Promise<S | null>;
  /** The task's message when its subject is gone, and the UnrecoverableError's. */
  notFound: { message: string; error: string };
  /** What the subject says when the task is cancelled (onTaskAbandoned's message), and the log line then. */
  cancelled: { message: string; log: string };
  progressIntervalMs: number;
  /** No progress is written before the run is this old (a short run then writes none: its RUNNING and end say enough). */
  progressAfterMs?: number;
  /** On cancellation, before the subject is settled (e.g. remove what was written outside the database). */
  onCancel?: () => Promise<unknown>;
  /**
   * An error from the work that is not a cancellation: throw (e.g. an UnrecoverableError after
   * failing the task) or return, and the error goes on to BullMQ (a transient error: retried).
   */
  onError?: (err: unknown, run: TaskRun) => Promise<void>;
}

/**
 * What every task's handler does around its work: takes the task (start; skipped when it is
 * finished or cancelled), loads its subject, reports progress, and ends a cancelled run with the
 * subject settled. Safe to run twice (after a crash).
 */
export async function runTask<S>(
  { prisma, tasks }: { prisma: PrismaClient; tasks: TaskStore },
  spec: TaskRunSpec<S>,
  { job, log, signal }: TaskRunContext,
  work: (subject: S, run: TaskRun) => Promise<string>,
): Promise<string> {
  const { taskId } = spec;
  const abandon = async (code: string, message: string) => {
    await prisma.$transaction((tx) => onTaskAbandoned[spec.kind](tx, { id: taskId }, code, message));
  };
  const settleIfCancelled = async () => {
    if ((await tasks.get(taskId))?.status === 'CANCELLED') await abandon('CANCELLED', spec.cancelled.message);
  };
  if (!(await tasks.start(taskId, job.attemptsStarted))) {
    await settleIfCancelled();
    log.info({ taskId }, 'task already finished or cancelled, nothing to do');
    return 'skipped';
  }
  const subject = await spec.load();
  if (subject === null) {
    await tasks.fail(taskId, 'NOT_FOUND', spec.notFound.message);
    throw new UnrecoverableError(spec.notFound.error);
  }

  let lastWrite = 0;
  let writing: Promise<unknown> = Promise.resolve();
  const quietUntil = Date.now() + (spec.progressAfterMs ?? 0);
  const run: TaskRun = {
    report(progress, message, force = false) {
      const now = Date.now();
      if (now < quietUntil || (!force && now - lastWrite < spec.progressIntervalMs)) return writing;
      lastWrite = now;
      writing = writing.then(() => tasks.progress(taskId, progress, message)).catch((err) => log.warn({ err }, 'progress write failed'));
      return writing;
    },
    flush: () => writing,
    async complete(write, timeoutMs, prepare) {
      let cancelledMeanwhile = false;
      const notRunning = new Error('the task is no longer running'); // rolls back what `prepare` and `write` wrote
      const completed = await prisma
        .$transaction(
          async (tx) => {
            if (prepare) await prepare(tx);
            const task = await write(tx);
            if (!task) {
              // Why, read before the rollback (the rare path: a statement more than locking first would cost).
              const [row] = await tx.$queryRaw<{ status: string }[]>`SELECT status FROM "Task" WHERE id = ${taskId}::uuid`;
              cancelledMeanwhile = row?.status === 'CANCELLED';
              throw notRunning;
            }
            return task;
          },
          { timeout: timeoutMs, maxWait: 10_000 },
        )
        .catch((err: unknown) => {
          if (err === notRunning) return null;
          throw err;
        });
      if (!completed) return cancelledMeanwhile ? 'cancelled' : 'finished';
      await tasks.announce(completed);
      return completed;
    },
    settleIfCancelled,
    abandon,
  };

  try {
    return await work(subject, run);
  } catch (err) {
    if (signal.aborted && signal.reason === CANCELLED) {
      if (spec.onCancel) await spec.onCancel().catch(() => {});
      await abandon('CANCELLED', spec.cancelled.message);
      log.info({ taskId, reason: String(signal.reason) }, spec.cancelled.log);
      return 'cancelled';
    }
    if (spec.onError) await spec.onError(err, run);
    throw err; // transient: BullMQ retries with backoff; the runner fails the task after the last attempt
  }
}
