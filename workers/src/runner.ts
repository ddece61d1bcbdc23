import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { PrismaClient } from '@lib/db/client.js';
import { isJobName, jobNames, jobs, parsePayload, type JobName } from '@lib/jobs/contracts.js';
import type { JobQueues } from '@lib/jobs/queues.js';
import type { BlobStore } from '@lib/blob/store.js';
import type { Logger } from '@lib/logger.js';
import type { TaskEventStream } from '@lib/tasks/events.js';
import { onTaskAbandoned } from '@lib/tasks/kinds.js';
import type { TaskStore } from '@lib/tasks/store.js';
import type { Handler, Handlers } from './handlers.js';
import { CANCELLED } from '@lib/tasks/run.js';
import type { JobMetrics } from './metrics.js';

export interface RunnerOptions {
  connection: ConnectionOptions;
  handlers: Handlers;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  log: Logger;
  metrics: JobMetrics;
  tasks: TaskStore;
  prisma: PrismaClient;
  events: TaskEventStream;
}

const INTERNAL_MESSAGE = 'Something went wrong on our side. Try again later; if it keeps failing, contact support.';

/** Refuses to start unless every job name has exactly one handler. */
export function checkHandlers(handlers: Record<string, unknown>) {
  const missing = jobNames.filter((n) => typeof handlers[n] !== 'function');
  const unknown = Object.keys(handlers).filter((n) => !isJobName(n));
  if (missing.length || unknown.length) {
    throw new Error(`job handlers do not match the job contracts: missing [${missing.join(', ')}], unknown [${unknown.join(', ')}]`);
  }
}

/**
 * One BullMQ worker per queue. Each job's payload is validated again here;
 * failures after the last attempt, stalls beyond the limit and cancellations
 * all end with the task row saying so.
 */
export function startWorkers(opts: RunnerOptions) {
  checkHandlers(opts.handlers);
  const { log, metrics, tasks } = opts;
  const queueNames = [...new Set(jobNames.map((n) => jobs[n].queue))];

  const finalFailure = async (job: Job, code: string, message: string) => {
    const task = await tasks.fail(job.id!, code, message);
    if (task) await opts.prisma.$transaction((tx) => onTaskAbandoned[task.kind](tx, task, code, message));
    metrics.failures.inc({ job: job.name, code });
  };

  const workers = queueNames.map((queueName) => {
    const worker = new Worker(
      queueName,
      async (job: Job, _token?: string, signal?: AbortSignal) => {
        const jobLog = log.child({ jobId: job.id, job: job.name, attempt: job.attemptsStarted });
        if (!isJobName(job.name)) throw new UnrecoverableError(`no handler for job ${job.name}`);
        const name: JobName = job.name;
        const parsed = jobs[name].payload.safeParse(job.data);
        if (!parsed.success) {
          jobLog.error({ issues: parsed.error.issues }, 'job payload rejected');
          await finalFailure(job, 'BAD_JOB', 'The job was malformed.');
          throw new UnrecoverableError('invalid payload');
        }
        const end = metrics.duration.startTimer({ job: name });
        jobLog.info('job started');
        try {
          const handler = opts.handlers[name] as Handler<typeof name>;
          const outcome = await handler(parsePayload(name, job.data), { job, log: jobLog, signal: signal ?? new AbortController().signal });
          end({ outcome });
          jobLog.info({ outcome }, 'job finished');
          return outcome;
        } catch (err) {
          end({ outcome: err instanceof UnrecoverableError ? 'rejected' : 'error' });
          const last = err instanceof UnrecoverableError || job.attemptsStarted >= (job.opts.attempts ?? 1);
          if (!(err instanceof UnrecoverableError)) {
            jobLog.error({ err, last }, last ? 'job failed for good' : 'job failed, will retry');
            if (last) await finalFailure(job, 'INTERNAL', INTERNAL_MESSAGE);
          }
          throw err;
        }
      },
      {
        connection: opts.connection,
        concurrency: opts.concurrency,
        lockDuration: opts.lockDurationMs,
        stalledInterval: opts.stalledIntervalMs,
        maxStalledCount: 2,
        autorun: true,
      },
    );
    worker.on('error', (err) => log.error({ err, queue: queueName }, 'worker error'));
    worker.on('stalled', (jobId) => log.warn({ jobId, queue: queueName }, 'job stalled; it will run again'));
    worker.on('failed', (job, err) => {
      // A job that stalled too often never reached our processor's catch.
      if (job && /stalled/i.test(err.message)) {
        void finalFailure(job, 'WORKER_CRASHED', 'The task was interrupted too many times.').catch((e) =>
          log.error({ err: e }, 'could not record failure'),
        );
      }
    });
    return worker;
  });

  // Cancellation: whichever worker runs the task aborts it.
  const unsubscribe = opts.events.on((event) => {
    if (event.status !== 'CANCELLED') return;
    for (const worker of workers) if (worker.cancelJob(event.taskId, CANCELLED)) log.info({ jobId: event.taskId }, 'cancelling job');
  });

  return {
    workers,
    /** Waits for active jobs; after `graceMs`, leaves the rest to be taken over by other workers. */
    async close(graceMs: number) {
      unsubscribe();
      const closing = Promise.all(workers.map((w) => w.close()));
      const timedOut = await Promise.race([
        closing.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref()),
      ]);
      // Jobs still running are handed back by going away: their locks stop being renewed and,
      // after the lock duration, another worker takes them over as stalled (no attempt lost).
      if (timedOut) log.warn({ graceMs }, 'active jobs did not finish in time; leaving them to be taken over');
    },
  };
}

/**
 * Repairs ACCEPTED tasks that no job will run. A task is written before its job is enqueued; if
 * Redis failed in between, the task would wait forever: its job is added. A task retried while
 * its previous job was still on its way out (the handler had marked it FAILED, BullMQ had not
 * yet failed the job), or whose requeue failed half-way, has a job that is already failed or
 * completed: that job is run again. Only tasks unchanged for `olderThanMs` are looked at, so a
 * task being enqueued or retried right now is left alone; queued and running jobs are left too.
 */
export async function reconcile(prisma: Pick<PrismaClient, 'task'>, queues: JobQueues, log: Logger, olderThanMs: number) {
  const stale = await prisma.task.findMany({
    where: { status: 'ACCEPTED', updatedAt: { lt: new Date(Date.now() - olderThanMs) } },
    orderBy: { updatedAt: 'asc' },
    take: 500,
  });
  let requeued = 0;
  for (const task of stale) {
    if (!isJobName(task.kind)) continue;
    const job = await queues.queue(task.kind).getJob(task.id);
    const state = job ? await job.getState() : 'unknown';
    if (state !== 'unknown' && state !== 'failed' && state !== 'completed') continue;
    try {
      const outcome = await queues.requeue(task.kind, task.payload as never);
      if (outcome === 'added' || outcome === 'retried') {
        requeued++;
        log.warn({ taskId: task.id, jobState: state, outcome }, 'ACCEPTED task had no job to run it; requeued');
      }
    } catch (err) {
      log.error({ err, taskId: task.id }, 'could not requeue an ACCEPTED task');
    }
  }
  if (requeued) log.warn({ requeued }, 'requeued ACCEPTED tasks whose job was missing, failed or completed');
  return requeued;
}

export type Runner = ReturnType<typeof startWorkers>;

/**
 * Uploads that were never ingested lose their Redis record when it expires; their files
 * would stay forever. This deletes files under uploads/ older than the upload lifetime (plus
 * a margin) that no document references.
 */
export async function sweepUploads(prisma: PrismaClient, blobs: BlobStore, log: Logger, olderThanMs: number, max = 1000) {
  const cutoff = Date.now() - olderThanMs;
  let deleted = 0;
  let seen = 0;
  for await (const entry of blobs.list('uploads/')) {
    if (++seen > max * 10 || deleted >= max) break;
    if (entry.modifiedAt.getTime() > cutoff) continue;
    if (await prisma.document.findFirst({ where: { blobKey: entry.key }, select: { id: true } })) continue;
    await blobs.delete(entry.key);
    deleted++;
  }
  if (deleted) log.info({ deleted }, 'deleted abandoned uploads');
  return deleted;
}
