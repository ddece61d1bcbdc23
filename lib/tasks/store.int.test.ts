import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { createPrisma, Prisma, type PrismaClient } from '../db/client.js';
import { createLogger } from '../logger.js';
import { testDbUrls } from '../../tests/support/db-urls.js';
import type { TaskEvent, TaskEventPublisher } from './events.js';
import { createTaskStore, startTask } from './store.js';

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

    // The work's own writes go with the completion, in its statement.
    const completed = await prisma.$transaction((tx) =>
      tasks.completeIn(tx, id, 'Done', [
        Prisma.sql`UPDATE "Course" SET "searchVersion" = "searchVersion" + 1, title = 'completed' WHERE id = ${courseId}::uuid`,
        Prisma.sql`INSERT INTO "CourseMember" ("courseId", "userId", role) VALUES (${courseId}::uuid, 'completer', 'TEACHER')`,
      ]),
    );
    expect(await prisma.course.findUniqueOrThrow({ where: { id: courseId } })).toMatchObject({ searchVersion: 1, title: 'completed' });
    expect(await prisma.courseMember.count({ where: { courseId, userId: 'completer' } })).toBe(1);
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

  describe('startTask', () => {
    const enqueued: string[] = [];
    const deps = () => ({
      prisma,
      queues: { enqueue: async (_kind: string, payload: { taskId: string }) => void enqueued.push(payload.taskId) },
      tasks: createTaskStore(prisma, publisher),
      log: createLogger({ service: 'test', level: 'silent', format: 'json' }),
    });
    const documentInsert = (id: string, courseId: string) => Prisma.sql`
      INSERT INTO "Document" (id, "courseId", title, "uploadedBy", "taskId", "blobKey", format, "sizeBytes", sha256, "updatedAt")
      SELECT ${id}::uuid, ${courseId}::uuid, 'Notes', 'owner', task.id, 'texts/x', 'MARKDOWN', 5, 'h', now() FROM task`;
    async function course() {
      const id = randomUUID();
      await prisma.course.create({ data: { id, title: 't', createdBy: 'x' } });
      courses.push(id);
      return id;
    }

    it.each([
      ['one statement on the pool, with its subject', false],
      ['a transaction after `before`', true],
    ])('writes the task (%s): the row returned is the row a read gives', async (_, withBefore) => {
      const courseId = await course();
      const taskId = randomUUID();
      const documentId = randomUUID();
      const { task, created } = await startTask(deps(), {
        kind: 'INGEST_DOCUMENT',
        ownerId: 'owner',
        courseId,
        payload: { taskId, documentId, courseId },
        ...(withBefore ? { before: async () => null } : { subject: documentInsert(documentId, courseId) }),
      });
      expect(created).toBe(true);
      expect(task).toEqual(await prisma.task.findUniqueOrThrow({ where: { id: taskId } }));
      expect(task).toMatchObject({
        status: 'ACCEPTED',
        progress: 0,
        attempts: 0,
        message: 'Waiting for a worker',
        payload: { taskId, documentId, courseId },
      });
      expect(task.updatedAt).toEqual(task.createdAt);
      if (!withBefore)
        expect(await prisma.document.findUniqueOrThrow({ where: { id: documentId } })).toMatchObject({
          taskId,
          courseId,
          status: 'PROCESSING',
        });
      expect(enqueued).toContain(taskId);
      expect(published.some((e) => e.taskId === taskId && e.status === 'ACCEPTED')).toBe(true);
    });

    it('writes nothing when the subject is refused, and gives back what was taken', async () => {
      const courseId = await course();
      const taskId = randomUUID();
      let rolledBack = 0;
      const start = startTask(deps(), {
        kind: 'INGEST_DOCUMENT',
        ownerId: 'owner',
        courseId,
        payload: { taskId, documentId: randomUUID(), courseId },
        // Another course that does not exist: the document's foreign key refuses it.
        subject: documentInsert(randomUUID(), randomUUID()),
        onRollback: async () => void rolledBack++,
      });
      await expect(start).rejects.toThrow(/foreign key/);
      expect(await prisma.task.findUnique({ where: { id: taskId } })).toBeNull();
      expect(enqueued).not.toContain(taskId);
      expect(rolledBack).toBe(1);
    });

    /** A course storage guard as the rag subgraph's ingestDocument writes it: room for `limit` bytes. */
    const roomFor = (courseId: string, bytes: number, limit: number) => ({
      sql: Prisma.sql`SELECT 1 FROM "Course" WHERE id = ${courseId}::uuid AND "storageBytes" + ${bytes} <= ${limit} FOR NO KEY UPDATE`,
      refused: async () => {
        throw new Error('no room');
      },
    });
    const storageBytes = async (courseId: string) =>
      (await prisma.$queryRaw<{ b: number }[]>`SELECT "storageBytes"::float8 AS b FROM "Course" WHERE id = ${courseId}::uuid`)[0]!.b;

    it('a guard checked by the same statement: eight starts at once into room for two take exactly two', async () => {
      const courseId = await course();
      let rolledBack = 0;
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, () => {
          const taskId = randomUUID();
          return startTask(deps(), {
            kind: 'INGEST_DOCUMENT',
            ownerId: 'owner',
            courseId,
            payload: { taskId, documentId: randomUUID(), courseId },
            // Each document is 5 bytes (documentInsert); room for 12.
            guard: roomFor(courseId, 5, 12),
            subject: documentInsert(randomUUID(), courseId),
            onRollback: async () => void rolledBack++,
          });
        }),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
      expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual(
        Array(6).fill('Error: no room'),
      );
      expect(rolledBack).toBe(6);
      expect(await prisma.task.count({ where: { courseId } })).toBe(2);
      expect(await prisma.document.count({ where: { courseId } })).toBe(2);
      expect(await storageBytes(courseId)).toBe(10);
    });

    it("Course.storageBytes follows its documents: inserted, resized, deleted, and with the course's material gone", async () => {
      const courseId = await course();
      for (const _ of [1, 2, 3])
        await startTask(deps(), {
          kind: 'INGEST_DOCUMENT',
          ownerId: 'owner',
          courseId,
          payload: { taskId: randomUUID(), documentId: randomUUID(), courseId },
          subject: documentInsert(randomUUID(), courseId),
        });
      expect(await storageBytes(courseId)).toBe(15);
      const [first] = await prisma.document.findMany({ where: { courseId }, take: 1 });
      await prisma.document.update({ where: { id: first!.id }, data: { sizeBytes: 1000 } });
      expect(await storageBytes(courseId)).toBe(1010);
      await prisma.document.delete({ where: { id: first!.id } });
      expect(await storageBytes(courseId)).toBe(10);
      await prisma.document.deleteMany({ where: { courseId } });
      expect(await storageBytes(courseId)).toBe(0);
    });

    it.each([
      ['one statement on the pool', false],
      ['a transaction after `before`', true],
    ])('starts with one idempotency key at once: one task, all get it (%s)', async (_, withBefore) => {
      const courseId = await course();
      const key = `k-${randomUUID()}`;
      const start = () => {
        const taskId = randomUUID();
        return startTask(deps(), {
          kind: 'INGEST_DOCUMENT',
          ownerId: 'owner',
          courseId,
          idempotencyKey: key,
          payload: { taskId, documentId: randomUUID(), courseId },
          ...(withBefore ? { before: async () => null } : {}),
        });
      };
      const results = await Promise.all(Array.from({ length: 6 }, start));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(results.map((r) => r.task.id)).size).toBe(1);
      expect(await prisma.task.count({ where: { ownerId: 'owner', idempotencyKey: key } })).toBe(1);
    });
  });
});
