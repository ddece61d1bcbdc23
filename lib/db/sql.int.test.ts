import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { testDbUrls } from '../../tests/support/db-urls.js';
import { createPrisma, Prisma, sqlOf, type PrismaClient } from './client.js';

describe('sqlOf: statements straight on the pool', () => {
  let prisma: PrismaClient;
  const registry = new Registry();
  const courseId = randomUUID();
  const conversationId = randomUUID();
  const questionId = randomUUID();
  const answerId = randomUUID();

  beforeAll(async () => {
    prisma = createPrisma({ url: testDbUrls().pooled, registry });
    await prisma.course.create({ data: { id: courseId, title: 'sql', createdBy: 'sql-test' } });
    await prisma.conversation.create({ data: { id: conversationId, courseId, userId: 'u1', title: 'c' } });
    await prisma.message.create({
      data: { id: questionId, conversationId, courseId, userId: 'u1', role: 'USER', content: 'Why? “quoted”', status: 'COMPLETE' },
    });
    await prisma.message.create({
      data: {
        id: answerId,
        conversationId,
        courseId,
        userId: 'u1',
        role: 'ASSISTANT',
        status: 'COMPLETE',
        mode: 'SOCRATIC',
        replyToId: questionId,
        documentIds: [randomUUID(), randomUUID()],
        citations: [{ index: 1, chunkId: 'd:1', quote: 'It “is” so.', pageStart: 3, pageEnd: 4 }],
        grounded: true,
        engine: 'MODEL',
        promptTokens: 12,
        completedAt: new Date('2026-12-01T10:11:12.345Z'),
      },
    });
  });
  afterAll(async () => {
    await prisma?.course.deleteMany({ where: { id: courseId } });
    await prisma?.$disconnect();
  });

  it('reads rows with the values Prisma’s raw queries give (uuid, enums, jsonb, timestamptz, uuid[], nulls)', async () => {
    for (const id of [questionId, answerId]) {
      const statement = Prisma.sql`SELECT * FROM "Message" WHERE id = ${id}::uuid`;
      const direct = await sqlOf(prisma)<Record<string, unknown>>(statement);
      const viaPrisma = await prisma.$queryRaw<Record<string, unknown>[]>(statement);
      expect(direct).toHaveLength(1);
      expect(direct).toEqual(viaPrisma);
    }
    const [answer] = await sqlOf(prisma)<{ completedAt: Date; documentIds: string[]; citations: unknown[] }>(
      Prisma.sql`SELECT "completedAt", "documentIds", citations FROM "Message" WHERE id = ${answerId}::uuid`,
    );
    expect(answer!.completedAt.toISOString()).toBe('2026-12-01T10:11:12.345Z');
    expect(answer!.documentIds).toHaveLength(2);
    expect(answer!.citations).toEqual([{ index: 1, chunkId: 'd:1', quote: 'It “is” so.', pageStart: 3, pageEnd: 4 }]);
  });

  it('reads documents, passages and memberships as Prisma’s raw queries do (int[], float8, nullable columns)', async () => {
    const documentId = randomUUID();
    await prisma.document.create({
      data: {
        id: documentId,
        courseId,
        title: 'Notes',
        format: 'PDF',
        pages: 3,
        sizeBytes: 1234,
        sha256: 'abc',
        blobKey: 'k',
        uploadedBy: 'u1',
        status: 'READY',
        ocrPages: [2, 3],
        ocrConfidence: 0.875,
        taskId: randomUUID(),
      },
    });
    await prisma.chunk.create({
      data: {
        id: `${documentId}:0`,
        documentId,
        courseId,
        position: 0,
        text: 'Light “is” energy.',
        heading: null,
        pageStart: 1,
        pageEnd: 2,
        charStart: 0,
        charEnd: 18,
        tokenCount: 3,
      },
    });
    await prisma.courseMember.create({ data: { courseId, userId: 'u1', role: 'TEACHER' } });
    for (const statement of [
      Prisma.sql`SELECT * FROM "Document" WHERE id = ANY(${[documentId]}::uuid[])`,
      Prisma.sql`SELECT * FROM "Chunk" WHERE id = ANY(${[`${documentId}:0`]}::text[]) AND "courseId" = ${courseId}::uuid`,
      Prisma.sql`SELECT * FROM "CourseMember" WHERE "userId" = ${'u1'} AND "courseId" = ANY(${[courseId]}::uuid[])`,
      Prisma.sql`SELECT "searchVersion" FROM "Course" WHERE id = ${courseId}::uuid`,
    ]) {
      const direct = await sqlOf(prisma)<Record<string, unknown>>(statement);
      expect(direct).toHaveLength(1);
      expect(direct).toEqual(await prisma.$queryRaw<Record<string, unknown>[]>(statement));
    }
    // And as the client's own model queries give them, which the code these replace used.
    const [document] = await sqlOf(prisma)<Record<string, unknown>>(Prisma.sql`SELECT * FROM "Document" WHERE id = ${documentId}::uuid`);
    expect(document).toEqual(await prisma.document.findUnique({ where: { id: documentId } }));
    const [chunk] = await sqlOf(prisma)<Record<string, unknown>>(
      Prisma.sql`SELECT * FROM "Chunk" WHERE "documentId" = ${documentId}::uuid`,
    );
    expect(chunk).toEqual(await prisma.chunk.findFirst({ where: { documentId } }));
  });

  it('sends parameters as Prisma does (dates, booleans, arrays, nested fragments) and counts its statements', async () => {
    const before = (await registry.getSingleMetric('db_queries_total')!.get()).values[0]?.value ?? 0;
    const at = new Date('2026-12-01T12:00:00.001Z');
    const filter = Prisma.sql`AND role = ${'ASSISTANT'}::"MessageRole"`;
    const statement = Prisma.sql`
      UPDATE "Message" SET "updatedAt" = ${at}, cached = ${true}
      WHERE id = ANY(${[answerId, questionId]}::uuid[]) ${filter}
      RETURNING id, "updatedAt", cached`;
    const rows = await sqlOf(prisma)<{ id: string; updatedAt: Date; cached: boolean }>(statement);
    expect(rows).toEqual([{ id: answerId, updatedAt: at, cached: true }]);
    const after = (await registry.getSingleMetric('db_queries_total')!.get()).values[0]?.value ?? 0;
    expect(after - before).toBe(1);
    const stored = await prisma.message.findUniqueOrThrow({ where: { id: answerId } });
    expect(stored.updatedAt).toEqual(at);
    expect(stored.cached).toBe(true);
  });

  it('refuses a client it did not make', () => {
    expect(() => sqlOf({} as PrismaClient)).toThrow(/createPrisma/);
  });
});
