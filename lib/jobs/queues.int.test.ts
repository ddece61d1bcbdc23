import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { testInfra } from '../../tests/support/infra.js';
import { bullConnection } from '../redis.js';
import { createJobQueues, type JobQueues } from './queues.js';

/**
 * requeue against real BullMQ queues, under a key prefix of this run's own (no other test's
 * worker takes these jobs), with a worker whose every run the test scripts.
 */

type Run = (job: Job) => Promise<unknown>;

async function waitFor(check: () => boolean | Promise<boolean>, what: string, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function gate() {
  let open = () => {};
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

const payloadFor = (taskId: string) => ({ taskId, documentId: randomUUID(), courseId: randomUUID() });
const fail: Run = async () => {
  throw new UnrecoverableError('ENCRYPTED_PDF');
};
const succeed: Run = async () => 'completed';

describe('requeue: a task’s job runs again whatever state it is in', () => {
  const connection = bullConnection(testInfra().REDIS_URL);
  const prefix = `test-requeue-${randomUUID().slice(0, 8)}`;
  let queues: JobQueues;
  let worker: Worker;
  /** Per task: what each of its runs does, in order (the last one repeats). */
  const scripts = new Map<string, Run[]>();
  const runs = new Map<string, number>();
  const queueErrors: Error[] = [];

  beforeAll(async () => {
    queues = createJobQueues(connection, (err) => queueErrors.push(err), { prefix, settleMs: 20_000 });
    worker = new Worker(
      'ingest',
      async (job) => {
        const n = runs.get(job.id!) ?? 0;
        runs.set(job.id!, n + 1);
        const script = scripts.get(job.id!) ?? [succeed];
        return script[Math.min(n, script.length - 1)]!(job);
      },
      { connection, prefix, concurrency: 4 },
    );
    await worker.waitUntilReady();
  });

  afterAll(async () => {
    await worker.close();
    await queues.queue('INGEST_DOCUMENT').obliterate({ force: true });
    await queues.close();
    expect(queueErrors).toEqual([]);
  });

  const stateOf = async (taskId: string) => (await (await queues.queue('INGEST_DOCUMENT').getJob(taskId))?.getState()) ?? 'missing';
  const runsOf = (taskId: string) => runs.get(taskId) ?? 0;

  it('waits for an active job whose handler already failed the task, then runs it again', async () => {
    const taskId = randomUUID();
    const payload = payloadFor(taskId);
    const finishing = gate();
    // The handler has marked the task FAILED and is on its way out: the job is still active.
    scripts.set(taskId, [
      async () => {
        await finishing.wait;
        throw new UnrecoverableError('ENCRYPTED_PDF');
      },
      succeed,
    ]);
    await queues.enqueue('INGEST_DOCUMENT', payload);
    await waitFor(() => runsOf(taskId) === 1, 'the first run started');
    expect(await stateOf(taskId)).toBe('active');

    // The job lets go only once requeue has seen it active (the window the retry fell into).
    const queue = queues.queue('INGEST_DOCUMENT');
    const getJob = queue.getJob.bind(queue);
    queue.getJob = async (id: string) => {
      const job = await getJob(id);
      if (job) {
        const getState = job.getState.bind(job);
        job.getState = async () => {
          const state = await getState();
          if (state === 'active') finishing.open();
          return state;
        };
      }
      return job;
    };
    try {
      expect(await queues.requeue('INGEST_DOCUMENT', payload)).toBe('retried');
    } finally {
      queue.getJob = getJob;
    }
    await waitFor(async () => (await stateOf(taskId)) === 'completed', 'the second run completed');
    expect(runsOf(taskId)).toBe(2);
  });

  it('retries a failed job, adds a completed or missing one anew, and leaves a waiting one to run once', async () => {
    const failed = randomUUID();
    const completed = randomUUID();
    const missing = randomUUID();
    const waiting = randomUUID();
    scripts.set(failed, [fail, succeed]);
    scripts.set(completed, [succeed]);
    await queues.enqueue('INGEST_DOCUMENT', payloadFor(failed));
    await queues.enqueue('INGEST_DOCUMENT', payloadFor(completed));
    await waitFor(async () => (await stateOf(failed)) === 'failed', 'the failed job');
    await waitFor(async () => (await stateOf(completed)) === 'completed', 'the completed job');

    expect(await queues.requeue('INGEST_DOCUMENT', payloadFor(failed))).toBe('retried');
    expect(await queues.requeue('INGEST_DOCUMENT', payloadFor(completed))).toBe('added');
    expect(await queues.requeue('INGEST_DOCUMENT', payloadFor(missing))).toBe('added');

    const queue = queues.queue('INGEST_DOCUMENT');
    await queue.pause();
    try {
      await queues.enqueue('INGEST_DOCUMENT', payloadFor(waiting));
      expect(await queues.requeue('INGEST_DOCUMENT', payloadFor(waiting))).toBe('queued');
    } finally {
      await queue.resume();
    }
    for (const id of [failed, completed, missing, waiting]) {
      await waitFor(async () => (await stateOf(id)) === 'completed', `job ${id} completed`);
    }
    expect({ failed: runsOf(failed), completed: runsOf(completed), missing: runsOf(missing), waiting: runsOf(waiting) }).toEqual({
      failed: 2,
      completed: 2,
      missing: 1,
      waiting: 1,
    });
  });

  it('says when a job is still active after the wait, without touching it', async () => {
    const impatient = createJobQueues(connection, (err) => queueErrors.push(err), { prefix, settleMs: 200 });
    const taskId = randomUUID();
    const holding = gate();
    scripts.set(taskId, [async () => holding.wait.then(() => 'completed')]);
    try {
      await impatient.enqueue('INGEST_DOCUMENT', payloadFor(taskId));
      await waitFor(() => runsOf(taskId) === 1, 'the run started');
      expect(await impatient.requeue('INGEST_DOCUMENT', payloadFor(taskId))).toBe('active');
      holding.open();
      await waitFor(async () => (await stateOf(taskId)) === 'completed', 'the run completed');
      expect(runsOf(taskId)).toBe(1);
    } finally {
      holding.open();
      await impatient.close();
    }
  });
});
