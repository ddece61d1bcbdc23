import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { UnrecoverableError, Worker } from 'bullmq';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import type { PrismaClient } from '@lib/db/client.js';
import { createJobQueues, type JobQueues } from '@lib/jobs/queues.js';
import { bullConnection } from '@lib/redis.js';
import { testInfra } from '../../tests/support/infra.js';
import { reconcile } from './runner.js';

/**
 * The reconciler against real BullMQ queues (under this run's own key prefix), with the tasks it
 * finds given by a stand-in for PostgreSQL: the shared test database holds other tests' tasks,
 * which other tests' reconcilers would race for.
 */

async function waitFor(check: () => boolean | Promise<boolean>, what: string, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('reconcile: an ACCEPTED task always has a job that will run it', () => {
  const connection = bullConnection(testInfra().REDIS_URL);
  const prefix = `test-reconcile-${randomUUID().slice(0, 8)}`;
  let queues: JobQueues;
  let worker: Worker;
  const runs = new Map<string, number>();
  /** Tasks whose first run fails. */
  const failFirst = new Set<string>();
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  /** Tasks whose run waits for `held`. */
  const hold = new Set<string>();

  beforeAll(async () => {
    queues = createJobQueues(connection, () => undefined, { prefix, settleMs: 2000 });
    worker = new Worker(
      'ingest',
      async (job) => {
        const n = (runs.get(job.id!) ?? 0) + 1;
        runs.set(job.id!, n);
        if (hold.has(job.id!)) await held;
        if (n === 1 && failFirst.has(job.id!)) throw new UnrecoverableError('ENCRYPTED_PDF');
        return 'completed';
      },
      { connection, prefix, concurrency: 4 },
    );
    await worker.waitUntilReady();
  });

  afterAll(async () => {
    release();
    await worker.close();
    await queues.queue('INGEST_DOCUMENT').obliterate({ force: true });
    await queues.close();
  });

  const stateOf = async (taskId: string) => (await (await queues.queue('INGEST_DOCUMENT').getJob(taskId))?.getState()) ?? 'missing';
  const acceptedTask = (id: string) => ({
    id,
    kind: 'INGEST_DOCUMENT',
    status: 'ACCEPTED',
    payload: { taskId: id, documentId: randomUUID(), courseId: randomUUID() },
  });

  it('runs again the job of a task whose job failed, completed or is missing, and leaves queued and running jobs alone', async () => {
    const failed = randomUUID(); // retried while its job was on its way out: the job then failed
    const completed = randomUUID();
    const missing = randomUUID(); // Redis failed between the task's insert and its enqueue
    const running = randomUUID();
    const waiting = randomUUID();
    failFirst.add(failed);
    hold.add(running);
    const queue = queues.queue('INGEST_DOCUMENT');
    await queues.enqueue('INGEST_DOCUMENT', acceptedTask(failed).payload);
    await queues.enqueue('INGEST_DOCUMENT', acceptedTask(completed).payload);
    await queues.enqueue('INGEST_DOCUMENT', acceptedTask(running).payload);
    await waitFor(async () => (await stateOf(failed)) === 'failed', 'the failed job');
    await waitFor(async () => (await stateOf(completed)) === 'completed', 'the completed job');
    await waitFor(async () => (await stateOf(running)) === 'active', 'the running job');

    await queue.pause();
    let queries: unknown[] = [];
    try {
      await queues.enqueue('INGEST_DOCUMENT', acceptedTask(waiting).payload);
      const prisma = {
        task: {
          findMany: async (args: unknown) => {
            queries.push(args);
            return [failed, completed, missing, running, waiting].map(acceptedTask);
          },
        },
      } as unknown as Pick<PrismaClient, 'task'>;
      expect(await reconcile(prisma, queues, pino({ level: 'silent' }), 30_000)).toBe(3);
      // Three jobs queued again; the running one and the waiting one untouched.
      expect({
        failed: await stateOf(failed),
        completed: await stateOf(completed),
        missing: await stateOf(missing),
        running: await stateOf(running),
        waiting: await stateOf(waiting),
      }).toEqual({ failed: 'waiting', completed: 'waiting', missing: 'waiting', running: 'active', waiting: 'waiting' });
    } finally {
      await queue.resume();
      release();
    }
    // Only tasks unchanged for the interval are looked at (a task just retried is still being requeued).
    expect(queries).toEqual([expect.objectContaining({ where: { status: 'ACCEPTED', updatedAt: { lt: expect.any(Date) } } })]);
    const cutoff = (queries[0] as { where: { updatedAt: { lt: Date } } }).where.updatedAt.lt;
    expect(Date.now() - cutoff.getTime()).toBeGreaterThanOrEqual(30_000);
    queries = [];

    for (const id of [failed, completed, missing, running, waiting]) {
      await waitFor(async () => (await stateOf(id)) === 'completed', `job ${id} completed`);
    }
    expect({
      failed: runs.get(failed),
      completed: runs.get(completed),
      missing: runs.get(missing),
      running: runs.get(running),
      waiting: runs.get(waiting),
    }).toEqual({ failed: 2, completed: 2, missing: 1, running: 1, waiting: 1 });
  });
});
