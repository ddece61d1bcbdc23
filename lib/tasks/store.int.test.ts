import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createPrisma, type PrismaClient } from '../db/client.js';
import { testDbUrls } from '../../tests/support/db-urls.js';
import type { TaskEvent, TaskEventPublisher } from './events.js';
import { createTaskStore } from './store.js';

/** start, progress and completeIn write in one statement (UPDATE ... RETURNING): the rows and events they give must be Prisma's. */
describe('task store (PostgreSQL)', () => {
  let prisma: PrismaClient;
  const published: Omit<TaskEvent, 'at'>[] = [];
  const publisher: TaskEventPublisher = { publish: async (e) => void published.push(e), close: async () => {} };
  beforeAll(() => {
    prisma = createPrisma({ url: testDbUrls().pooled });
  });
  const courses: string[] = [];
  // Its tasks go with the course: a worker's reconciler must not find them later.
  afterAll(async () => {
    await prisma?.course.deleteMany({ where: { id: { in: courses } } });
    await prisma?.$disconnect();
  });

  async function seedTask() {
    const courseId = randomUUID();
    const id = randomUUID();
    await prisma.course.create({ data: { id: courseId, title: 't', createdBy: 'x' } });
    courses.push(courseId);
    await prisma.task.create({
      data: { id, kind: 'INGEST_DOCUMENT', ownerId: 'owner', courseId, payload: { taskId: id }, message: 'Waiting' },
    });
    return { id, courseId };
  }

  it('starts, reports and completes a task, returning the same rows as a read, and refuses other states', async () => {
    const tasks = createTaskStore(prisma, publisher);
    const { id, courseId } = await seedTask();
    const before = await prisma.task.findUniqueOrThrow({ where: { id } });

    const started = await tasks.start(id, 1);
    expect(started).toEqual(await prisma.task.findUniqueOrThrow({ where: { id } }));
    expect(started).toMatchObject({ status: 'RUNNING', attempts: 1, progress: 0, message: 'Started', payload: { taskId: id } });
    expect(started!.startedAt).toBeInstanceOf(Date);
    expect(started!.updatedAt.getTime()).toBeGreaterThanOrEqual(before.updatedAt.getTime());
    expect(published.at(-1)).toEqual({ taskId: id, ownerId: 'owner', courseId, status: 'RUNNING', progress: 0 });

    // A second start (after a crash) keeps the first startedAt.
    const again = await tasks.start(id, 2);
    expect(again).toMatchObject({ attempts: 2, message: 'Started again (attempt 2)', startedAt: started!.startedAt });

    expect(await tasks.progress(id, 1.5, 'Half')).toMatchObject({ progress: 1, message: 'Half' });
    expect(await tasks.progress(id, 0.25, 'A quarter')).toEqual(await prisma.task.findUniqueOrThrow({ where: { id } }));

    const completed = await prisma.$transaction((tx) => tasks.completeIn(tx, id, 'Done'));
    expect(completed).toEqual(await prisma.task.findUniqueOrThrow({ where: { id } }));
    expect(completed).toMatchObject({ status: 'COMPLETED', progress: 1, message: 'Done', errorCode: null, errorMessage: null });
    expect(completed!.finishedAt).toBeInstanceOf(Date);

    // Terminal: nothing moves it any more.
    expect(await tasks.start(id, 3)).toBeNull();
    expect(await tasks.progress(id, 0.5, 'late')).toBeNull();
    expect(await prisma.$transaction((tx) => tasks.completeIn(tx, id, 'again'))).toBeNull();
    expect(await prisma.task.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: 'COMPLETED', message: 'Done', attempts: 2 });
  });

  it('does not start a cancelled task', async () => {
    const tasks = createTaskStore(prisma, publisher);
    const { id } = await seedTask();
    await tasks.cancel(id);
    expect(await tasks.start(id, 1)).toBeNull();
    expect((await prisma.task.findUniqueOrThrow({ where: { id } })).status).toBe('CANCELLED');
  });
});
