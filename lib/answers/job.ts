import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { z } from 'zod';
import { removeJobIfWaiting } from '../jobs/queues.js';

/**
 * Answers are jobs on their own queue, so a model's concurrency is a worker
 * setting and an answer survives the process that started it: if a worker dies
 * mid-answer, BullMQ hands the job to another after its lock lapses (the answer
 * starts again, announced by a `reset` event), and after that the answer ends
 * FAILED, never GENERATING for ever. The job id is the assistant message's id.
 */
export const ANSWER_QUEUE = 'answer';
export const ANSWER_JOB = 'ANSWER_QUESTION';
export const answerJobSchema = z.object({ messageId: z.string().uuid() });
export type AnswerJob = z.infer<typeof answerJobSchema>;

export const answerJobOptions: JobsOptions = {
  attempts: 2,
  backoff: { type: 'fixed', delay: 500 },
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 24 * 3600 },
};

export function createAnswerQueue(connection: ConnectionOptions, onError: (err: Error) => void) {
  const queue = new Queue(ANSWER_QUEUE, { connection, defaultJobOptions: answerJobOptions });
  queue.on('error', onError);
  return {
    queue,
    /** Validates the payload; a duplicate add (same message) is a no-op. */
    async enqueue(payload: AnswerJob) {
      const data = answerJobSchema.parse(payload);
      await queue.add(ANSWER_JOB, data, { jobId: data.messageId });
    },
    /** Removes the job if no worker has taken it yet; false when it is running or gone. */
    removeIfWaiting: (messageId: string) => removeJobIfWaiting(queue, messageId),
    close: () => queue.close(),
  };
}
export type AnswerQueue = ReturnType<typeof createAnswerQueue>;
