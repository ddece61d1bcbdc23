import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { jobs, parsePayload, type JobName, type JobPayload } from './contracts.js';

/** Retries, backoff and retention for every job, set explicitly. */
export const defaultJobOptions: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 2000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

export interface JobQueues {
  /** Validates the payload and enqueues it with jobId = taskId (a duplicate add is a no-op). */
  enqueue<N extends JobName>(name: N, payload: JobPayload<N>): Promise<void>;
  /** Runs a failed task's job again: retries the failed job, or adds it anew if it was already cleaned away. */
  requeue<N extends JobName>(name: N, payload: JobPayload<N>): Promise<void>;
  /** Removes a job that no worker has taken yet; false when it is running or gone. */
  removeIfWaiting(name: JobName, taskId: string): Promise<boolean>;
  queue(name: JobName): Queue;
  close(): Promise<void>;
}

export function createJobQueues(connection: ConnectionOptions, onError: (err: Error) => void): JobQueues {
  const queues = new Map<string, Queue>();
  const queueFor = (name: JobName) => {
    const queueName = jobs[name].queue;
    let queue = queues.get(queueName);
    if (!queue) {
      queue = new Queue(queueName, { connection, defaultJobOptions });
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
      const job = await queueFor(name).getJob(data.taskId);
      const state = job ? await job.getState() : 'unknown';
      if (job && state === 'failed') await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      else if (job && state === 'completed') {
        await job.remove();
        await queueFor(name).add(name, data, { jobId: data.taskId });
      } else if (!job) await queueFor(name).add(name, data, { jobId: data.taskId });
    },
    async removeIfWaiting(name, taskId) {
      const job = await queueFor(name).getJob(taskId);
      if (!job) return false;
      const state = await job.getState();
      if (state !== 'waiting' && state !== 'delayed' && state !== 'prioritized') return false;
      try {
        await job.remove();
        return true;
      } catch {
        return false; // taken by a worker meanwhile
      }
    },
    queue: queueFor,
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}
