import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createPrisma, Prisma, type PrismaClient } from '../db/client.js';
import { createLogger } from '../logger.js';
import { testDbUrls } from '../../tests/support/db-urls.js';
import type { TaskEventPublisher } from './events.js';
import { runTask, type TaskRun } from './run.js';
import { createTaskStore } from './store.js';

/**
 * TaskRun.complete: the task's completion is the gate (no row lock taken first). What `prepare`
 * and `write` wrote is saved only with the completion, and rolled back when the task was
 * cancelled or finished by another run meanwhile.
 */
describe('runTask: complete (PostgreSQL)', () => {
  let prisma: PrismaClient;
  const publisher: TaskEventPublisher = { publish: async () => {}, close: async () => {} };
  const log = createLogger({ service: 'test', level: 'silent', format: 'json' });
  const courses: string[] = [];
  beforeAll(() => {
    prisma = createPrisma({ url: testDbUrls().pooled });
  });
  afterAll(async () => {
    await prisma?.course.deleteMany({ where: { id: { in: courses } } });
    await prisma?.$disconnect();
  });

  /** A RUNNING REINDEX task; `during` runs inside `complete` between `prepare` and `write`. */
  async function completeWith(during: (taskId: string) => Promise<unknown>) {
    const courseId = randomUUID();
    const taskId = randomUUID();
    await prisma.course.create({ data: { id: courseId, title: 'before', createdBy: 'x' } });
    courses.push(courseId);
    await prisma.task.create({ data: { id: taskId, kind: 'REINDEX_COURSE', ownerId: 'o', courseId, payload: { taskId, courseId } } });
    const tasks = createTaskStore(prisma, publisher);
    let result: Awaited<ReturnType<TaskRun['complete']>> | undefined;
    await runTask(
      { prisma, tasks },
      {
        kind: 'REINDEX_COURSE',
        taskId,
        load: async () => ({}),
        notFound: { message: 'gone', error: 'gone' },
        cancelled: { message: 'Cancelled', log: 'cancelled' },
        progressIntervalMs: 1000,
      },
      { job: { attemptsStarted: 1 }, log, signal: new AbortController().signal },
      async (_, run) => {
        result = await run.complete(
          async (tx) => {
            await during(taskId);
            return tasks.completeIn(tx, taskId, 'Done', [Prisma.sql`UPDATE "Course" SET title = 'written' WHERE id = ${courseId}::uuid`]);
          },
          10_000,
          async (tx) =>
            void (await tx.$executeRaw`INSERT INTO "CourseMember" ("courseId", "userId", role) VALUES (${courseId}::uuid, 'p', 'STUDENT')`),
        );
        return 'done';
      },
    );
    const course = await prisma.course.findUniqueOrThrow({ where: { id: courseId }, include: { members: true } });
    return { result, title: course.title, members: course.members.length, task: await tasks.get(taskId) };
  }

  it('saves what prepare and write wrote with the completion', async () => {
    const { result, title, members, task } = await completeWith(async () => {});
    expect(result).toMatchObject({ status: 'COMPLETED', message: 'Done' });
    expect({ title, members, status: task?.status }).toEqual({ title: 'written', members: 1, status: 'COMPLETED' });
  });

  it('a cancel that got in first wins: nothing is saved and it says so', async () => {
    const { result, title, members, task } = await completeWith((id) => createTaskStore(prisma, publisher).cancel(id));
    expect(result).toBe('cancelled');
    expect({ title, members, status: task?.status }).toEqual({ title: 'before', members: 0, status: 'CANCELLED' });
  });

  it('another run that completed it meanwhile: nothing of this run is saved, "finished"', async () => {
    const { result, title, members, task } = await completeWith((id) =>
      prisma.task.update({ where: { id }, data: { status: 'COMPLETED', message: 'by the other run' } }),
    );
    expect(result).toBe('finished');
    expect({ title, members, status: task?.status, message: task?.message }).toEqual({
      title: 'before',
      members: 0,
      status: 'COMPLETED',
      message: 'by the other run',
    });
  });
});
