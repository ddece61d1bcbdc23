import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { jobs, parsePayload, type JobName, type JobPayload } from './contracts.js';

/** Retries, backoff and retention for every job, set explicitly. */
export const defaultJobOptions: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/**
 * What `requeue` did: `retried` a failed job, `added` one anew (it had completed or was gone),
 * found it `queued` already (waiting, delayed...: it will run), or found it still `active` after
 * waiting for it to settle (the reconciler requeues it once it has failed or completed).
 */
export type RequeueOutcome = 'retried' | 'added' | 'queued' | 'active';

export interface JobQueuesOptions {
  /** BullMQ's key prefix (default `bull`); tests use their own. */
  prefix?: string;
  /** How long `requeue` waits for an active job to fail or complete (default 5 s). */
  settleMs?: number;
}

export interface JobQueues {
  /** Validates the payload and enqueues it with jobId = taskId (a duplicate add is a no-op). */
  enqueue<N extends JobName>(name: N, payload: JobPayload<N>): Promise<void>;
  /**
   * Makes a task's job run again, whatever state it is in: a failed job is retried, a completed
   * or missing one added anew, a waiting one left to run. An active one (its handler marked the
   * task FAILED and is still on its way out) is waited for, up to `settleMs`, then handled so.
   */
  requeue<N extends JobName>(name: N, payload: JobPayload<N>): Promise<RequeueOutcome>;
  /** Removes a job that no worker has taken yet; false when it is running or gone. */
  removeIfWaiting(name: JobName, taskId: string): Promise<boolean>;
  queue(name: JobName): Queue;
  close(): Promise<void>;
}

const SETTLE_POLL_MS = 100;

export function createJobQueues(connection: ConnectionOptions, onError: (err: Error) => void, opts: JobQueuesOptions = {}): JobQueues {
  const queues = new Map<string, Queue>();
  const settleMs = opts.settleMs ?? 5000;
  const queueFor = (name: JobName) => {
    const queueName = jobs[name].queue;
    let queue = queues.get(queueName);
    if (!queue) {
      queue = new Queue(queueName, { connection, defaultJobOptions, ...(opts.prefix ? { prefix: opts.prefix } : {}) });
      queue.on('error', onError);
      queues.set(queueName, queue);
    }
    return queue;
  };
  return {
    async enqueue(name, payload) {
      const data = parsePayload(name, payload);
      await queueFor(name).add(name, data, { jobId: data.taskId });
    },
    async requeue(name, payload) {
      const data = parsePayload(name, payload);
      const queue = queueFor(name);
      const deadline = Date.now() + settleMs;
      for (;;) {
        const job = await queue.getJob(data.taskId);
        const state = job ? await job.getState() : 'unknown';
        try {
          if (!job || state === 'unknown') {
            await queue.add(name, data, { jobId: data.taskId });
            return 'added';
          }
          if (state === 'failed') {
            await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
            return 'retried';
          }
          if (state === 'completed') {
            await job.remove();
            await queue.add(name, data, { jobId: data.taskId });
            return 'added';
          }
        } catch (err) {
          // The job moved meanwhile (another retry, a worker): look again, within the deadline.
          if (Date.now() >= deadline) throw err;
          await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
          continue;
        }
        if (state !== 'active') return 'queued';
        if (Date.now() >= deadline) return 'active';
        await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
      }
    },
    removeIfWaiting: (name, taskId) => removeJobIfWaiting(queueFor(name), taskId),
    queue: queueFor,
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}

/** Removes a job that no worker has taken yet; false when it is running, finished or gone. */
export async function removeJobIfWaiting(queue: Queue, jobId: string): Promise<boolean> {
  const job = await queue.getJob(jobId);
  if (!job) return false;
  const state = await job.getState();
  if (state !== 'waiting' && state !== 'delayed' && state !== 'prioritized') return false;
  try {
    await job.remove();
    return true;
  } catch {
    return false; // taken by a worker meanwhile
  }
}
