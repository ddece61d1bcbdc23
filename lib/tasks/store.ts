import { Prisma, sqlOf, type PrismaClient, type Task } from '../db/client.js';
import type { JobName, JobPayload } from '../jobs/contracts.js';
import type { JobQueues } from '../jobs/queues.js';
import type { Logger } from '../logger.js';
import type { TaskEventPublisher } from './events.js';

type Db = PrismaClient | Prisma.TransactionClient;
/** A column's new value computed in SQL (for `update`). */
class SqlExpression {
  constructor(readonly sql: Prisma.Sql) {}
}
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

  /**
   * `transition` in one statement (UPDATE ... RETURNING), for the hot paths. Column names go into the
   * SQL as identifiers, so only these (typed, never from input) may be set.
   */
  type Column = 'status' | 'attempts' | 'startedAt' | 'progress' | 'message' | 'finishedAt' | 'errorCode' | 'errorMessage';
  const update = async (db: Db, id: string, from: TaskStatus[], set: Partial<Record<Column, unknown>>, alongside: Prisma.Sql[] = []) => {
    const assignments = Object.entries(set).map(([column, value]) =>
      value instanceof SqlExpression
        ? Prisma.sql`${Prisma.raw(`"${column}"`)} = ${value.sql}`
        : Prisma.sql`${Prisma.raw(`"${column}"`)} = ${column === 'status' ? Prisma.sql`${value}::"TaskStatus"` : value}`,
    );
    const statement = Prisma.sql`
      ${alongside.length ? Prisma.sql`WITH ${Prisma.join(alongside.map((sql, i) => Prisma.sql`${Prisma.raw(`alongside${i}`)} AS (${sql})`))}` : Prisma.empty}
      UPDATE "Task" SET ${Prisma.join(assignments)}, "updatedAt" = ${new Date()}
      WHERE id = ${id}::uuid AND status = ANY(${from}::"TaskStatus"[])
      RETURNING *`;
    // Outside a transaction straight on the pool (sqlOf): a worker starts every task here.
    const [task] = db === prisma ? await sqlOf(prisma)<Task>(statement) : await db.$queryRaw<Task[]>(statement);
    return task ?? null;
  };

  return {
    announce,
    get: (id: string) => prisma.task.findUnique({ where: { id } }),

    /**
     * A worker takes the task (again, after a crash): null if it was cancelled or is already done.
     * One statement (the hot path of every job: a short document's ingestion is a few of them).
     */
    start: async (id: string, attempt: number) =>
      announce(
        await update(prisma, id, ['ACCEPTED', 'RUNNING'], {
          status: 'RUNNING',
          attempts: attempt,
          startedAt: new SqlExpression(Prisma.sql`coalesce("startedAt", ${new Date()})`),
          progress: 0,
          message: attempt > 1 ? `Started again (attempt ${attempt})` : 'Started',
        }),
      ),

    progress: async (id: string, progress: number, message: string) =>
      announce(await update(prisma, id, ['RUNNING'], { progress: Math.min(1, Math.max(0, progress)), message })),

    /**
     * Completion inside the caller's transaction (with the work's own writes); announce after commit.
     * `alongside`: data-modifying statements of the work (its subject READY) sent as WITH clauses of
     * the completion, one round trip, each on rows of its own (PostgreSQL applies one change per row
     * and statement). They run whether or not the task was RUNNING: only in a transaction that rolls
     * back when this returns null (TaskRun.complete does).
     */
    completeIn: (tx: Prisma.TransactionClient, id: string, message: string, alongside: Prisma.Sql[] = []) =>
      update(
        tx,
        id,
        ['RUNNING'],
        {
          status: 'COMPLETED',
          progress: 1,
          message,
          finishedAt: new Date(),
          errorCode: null,
          errorMessage: null,
        },
        alongside,
      ),

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

export interface TaskStartDeps {
  prisma: PrismaClient;
  queues: Pick<JobQueues, 'enqueue'>;
  tasks: Pick<TaskStore, 'announce'>;
  log: Logger;
}

/**
 * The task an idempotency key already names, or null. `check` throws (a CONFLICT) when that task
 * is not one the caller may return: another course, another kind.
 */
export async function taskByIdempotencyKey(
  prisma: PrismaClient,
  ownerId: string,
  key: string | null,
  check: (task: Task) => void,
): Promise<Task | null> {
  if (key === null) return null;
  const task = await prisma.task.findUnique({ where: { ownerId_idempotencyKey: { ownerId, idempotencyKey: key } } });
  if (task) check(task);
  return task;
}

export interface TaskStart<N extends JobName> {
  kind: N;
  ownerId: string;
  courseId: string;
  /** Its job's payload; payload.taskId is the new task's id. */
  payload: JobPayload<N>;
  idempotencyKey?: string | null;
  /** Throws when the task already made with this key is not one to return (see taskByIdempotencyKey). */
  checkExisting?: (task: Task) => void;
  /**
   * The task's subject (its document, its exam), written by the task's own statement: an
   * `INSERT ... SELECT ... FROM task`, where `task` is the new row (a WITH clause of the statement).
   */
  subject?: Prisma.Sql;
  /**
   * A condition checked by the same statement: a SELECT that returns a row when the task may be
   * written; it may lock what it reads (FOR NO KEY UPDATE) for that statement. No row: nothing is written,
   * onRollback runs, then `refused`, which throws the caller's error.
   */
  guard?: { sql: Prisma.Sql; refused: () => Promise<never> };
  /**
   * In a transaction, before the task row (a lock, a lookup): a task returned here is used instead
   * of a new one (nothing is written). Not with `subject` or `guard`.
   */
  before?: (tx: Prisma.TransactionClient) => Promise<Task | null | void>;
  /** When the write fails, before a lost idempotency race is resolved: give back what was taken for it. */
  onRollback?: () => Promise<unknown>;
}

/**
 * A unique constraint refused the row: PostgreSQL's 23505, from the pool (node-postgres) or from a
 * raw statement through Prisma (P2010, the driver adapter's error in its meta); P2002 from a model call.
 */
const isUniqueViolation = (err: unknown) => {
  if (!(err instanceof Prisma.PrismaClientKnownRequestError))
    return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';
  const cause = (err.meta as { driverAdapterError?: { cause?: { originalCode?: unknown } } } | undefined)?.driverAdapterError?.cause;
  return err.code === 'P2002' || (err.code === 'P2010' && cause?.originalCode === '23505');
};

/**
 * Records a task (ACCEPTED) with what it works on, atomically, then enqueues its job (job id =
 * task id) and announces it. If Redis fails after the commit, the worker's reconciler enqueues
 * the task later: a task never stays without its job. Two requests with the same idempotency key
 * at once: the loser returns the winner's task. `created` is false when an existing task was
 * returned. Without `before`, the guard, the task and its subject are one statement straight on
 * the pool (sqlOf), not an interactive transaction through Prisma (four round trips at least):
 * every pasted note starts here.
 */
export async function startTask<N extends JobName>(
  { prisma, queues, tasks, log }: TaskStartDeps,
  spec: TaskStart<N>,
): Promise<{ task: Task; created: boolean }> {
  const key = spec.idempotencyKey ?? null;
  const taskId = spec.payload.taskId;
  if (spec.before && (spec.subject || spec.guard)) throw new Error('startTask: `before` cannot go with `subject` or `guard`');
  // createdAt takes its default; updatedAt (Prisma's @updatedAt, no default in the table) the same instant.
  const insertTask = Prisma.sql`
    INSERT INTO "Task" (id, kind, "ownerId", "courseId", "idempotencyKey", payload, message, "updatedAt")
    SELECT ${taskId}::uuid, ${spec.kind}::"TaskKind", ${spec.ownerId}, ${spec.courseId}::uuid, ${key},
           ${JSON.stringify(spec.payload)}::jsonb, 'Waiting for a worker', now()
    ${spec.guard ? Prisma.sql`WHERE EXISTS (SELECT 1 FROM guard)` : Prisma.empty}
    RETURNING *`;
  let result: { task: Task; created: boolean } | null;
  try {
    if (!spec.before) {
      const clauses = [
        ...(spec.guard ? [Prisma.sql`guard AS (${spec.guard.sql})`] : []),
        Prisma.sql`task AS (${insertTask})`,
        ...(spec.subject ? [Prisma.sql`subject AS (${spec.subject})`] : []),
      ];
      const [task] = await sqlOf(prisma)<Task>(Prisma.sql`WITH ${Prisma.join(clauses)} SELECT * FROM task`);
      result = task ? { task, created: true } : null;
    } else {
      const before = spec.before;
      result = await prisma.$transaction(async (tx) => {
        const found = await before(tx);
        if (found) return { task: found, created: false };
        const [task] = await tx.$queryRaw<Task[]>(insertTask);
        return { task: task!, created: true };
      });
    }
  } catch (err) {
    if (spec.onRollback) await spec.onRollback().catch(() => {});
    if (key !== null && isUniqueViolation(err)) {
      const winner = await taskByIdempotencyKey(prisma, spec.ownerId, key, spec.checkExisting ?? (() => {}));
      if (winner) return { task: winner, created: false };
    }
    throw err;
  }
  if (!result) {
    if (spec.onRollback) await spec.onRollback().catch(() => {});
    return spec.guard!.refused();
  }
  if (!result.created) return result;
  try {
    await queues.enqueue(spec.kind, spec.payload);
  } catch (err) {
    log.error({ err, taskId }, 'enqueue failed; the reconciler will enqueue the task');
  }
  await tasks.announce(result.task).catch((err: unknown) => log.warn({ err, taskId }, 'task event not published'));
  return result;
}
