import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { ANSWER_JOB, ANSWER_QUEUE, answerJobSchema, type AnswerQueue } from '@lib/answers/job.js';
import { ANSWER_CONTROL_CHANNEL, answerControlSchema } from '@lib/answers/stream.js';
import type { Logger } from '@lib/logger.js';
import { failAnswer, type AnswerDeps } from './handler.js';

export interface AnswerWorkerOptions {
  connection: ConnectionOptions;
  /** A connection of its own, for the control channel (a subscribed connection can do nothing else). */
  subscriber: Redis;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  log: Logger;
  deps: AnswerDeps;
  handler: (messageId: string, ctx: { log: Logger; signal: AbortSignal }) => Promise<string>;
}

const INTERNAL = 'Something went wrong on our side while writing this answer. Ask again.';
const CRASHED = 'The answer was interrupted too many times. Ask again.';

/**
 * The answer queue's worker. Cancellation requests arrive on the control
 * channel; whichever worker runs the answer aborts it (the model request is
 * aborted through the job's signal).
 */
export async function startAnswerWorker(opts: AnswerWorkerOptions) {
  const { log, deps } = opts;
  const worker = new Worker(
    ANSWER_QUEUE,
    async (job: Job, _token?: string, signal?: AbortSignal) => {
      const jobLog = log.child({ jobId: job.id, job: job.name, attempt: job.attemptsStarted });
      const parsed = answerJobSchema.safeParse(job.data);
      if (job.name !== ANSWER_JOB || !parsed.success) {
        jobLog.error({ data: job.data }, 'answer job rejected');
        throw new UnrecoverableError('invalid answer job');
      }
      jobLog.info({ messageId: parsed.data.messageId }, 'answer started');
      try {
        return await opts.handler(parsed.data.messageId, { log: jobLog, signal: signal ?? new AbortController().signal });
      } catch (err) {
        const last = job.attemptsStarted >= (job.opts.attempts ?? 1);
        jobLog.error({ err, last }, last ? 'answer failed for good' : 'answer failed, will retry');
        if (last) await failAnswer(deps, parsed.data.messageId, 'INTERNAL', INTERNAL);
        throw err;
      }
    },
    {
      connection: opts.connection,
      concurrency: opts.concurrency,
      lockDuration: opts.lockDurationMs,
      stalledInterval: opts.stalledIntervalMs,
      maxStalledCount: 1,
    },
  );
  worker.on('error', (err) => log.error({ err, queue: ANSWER_QUEUE }, 'answer worker error'));
  worker.on('failed', (job, err) => {
    // A job that stalled too often never reached the processor's catch.
    if (job && /stalled/i.test(err.message)) {
      const messageId = String(job.id);
      void failAnswer(deps, messageId, 'WORKER_CRASHED', CRASHED).catch((e) => log.error({ err: e }, 'could not fail answer'));
    }
  });

  opts.subscriber.on('message', (channel: string, raw: string) => {
    if (channel !== ANSWER_CONTROL_CHANNEL) return;
    let parsed;
    try {
      parsed = answerControlSchema.safeParse(JSON.parse(raw));
    } catch {
      return;
    }
    if (parsed.success && worker.cancelJob(parsed.data.messageId, 'cancelled')) {
      log.info({ jobId: parsed.data.messageId }, 'cancelling answer');
    }
  });
  await opts.subscriber.subscribe(ANSWER_CONTROL_CHANNEL);

  return {
    worker,
    async close(graceMs: number) {
      await opts.subscriber.quit().catch(() => undefined);
      const closing = worker.close();
      const timedOut = await Promise.race([
        closing.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref()),
      ]);
      if (timedOut) log.warn({ graceMs }, 'answers still running; leaving them to be taken over');
    },
  };
}

/**
 * Answers must never stay GENERATING: this finds old ones whose job is gone
 * (Redis lost it, or the enqueue after the insert failed) and queues them once
 * more, or fails them when they have already been tried.
 */
export async function sweepAnswers(deps: Pick<AnswerDeps, 'prisma' | 'publisher'>, queue: AnswerQueue, log: Logger, olderThanMs: number) {
  const { prisma } = deps;
  const stale = await prisma.message.findMany({
    where: { status: 'GENERATING', role: 'ASSISTANT', updatedAt: { lt: new Date(Date.now() - olderThanMs) } },
    select: { id: true, attempts: true },
    take: 500,
  });
  let requeued = 0;
  let failed = 0;
  for (const message of stale) {
    const job = await queue.queue.getJob(message.id);
    const state = job ? await job.getState() : 'missing';
    if (state === 'active' || state === 'waiting' || state === 'delayed' || state === 'prioritized') continue;
    if (state === 'missing' && message.attempts === 0) {
      await queue.enqueue({ messageId: message.id });
      // Touch it, so the next pass waits again before judging it.
      await prisma.message.update({ where: { id: message.id }, data: { updatedAt: new Date() } });
      requeued++;
    } else {
      if (await failAnswer(deps, message.id, 'WORKER_CRASHED', CRASHED)) failed++;
    }
  }
  if (requeued || failed) log.warn({ requeued, failed }, 'swept stuck answers');
  return { requeued, failed };
}
