import type { PrismaClient } from '@lib/db/client.js';
import type { Retrieval } from '@lib/search/retrieval.js';
import { runTask } from '@lib/tasks/run.js';
import type { TaskStore } from '@lib/tasks/store.js';
import type { Handler } from '../handlers.js';

/**
 * Recomputes every vector of a course's ready documents with the current
 * embedders (after a change of embedding model), one document at a time, each
 * replaced atomically. Searches keep working meanwhile: the embedded store
 * only compares vectors of the current model, Qdrant uses a collection per model.
 */
export function createReindexHandler({
  prisma,
  tasks,
  retrieval,
}: {
  prisma: PrismaClient;
  tasks: TaskStore;
  retrieval: Retrieval;
}): Handler<'REINDEX_COURSE'> {
  return ({ taskId, courseId }, ctx) => {
    const { log, signal } = ctx;
    return runTask(
      { prisma, tasks },
      {
        kind: 'REINDEX_COURSE',
        taskId,
        load: () => prisma.course.findUnique({ where: { id: courseId }, select: { id: true } }),
        notFound: { message: 'The course no longer exists.', error: 'course not found' },
        cancelled: { message: 'The re-index was cancelled.', log: 're-index stopped' },
        progressIntervalMs: 0,
      },
      ctx,
      async () => {
        const documents = await prisma.document.findMany({
          where: { courseId, status: 'READY' },
          select: { id: true },
          orderBy: { createdAt: 'asc' },
        });
        let chunks = 0;
        for (const [i, doc] of documents.entries()) {
          if (signal.aborted) {
            // Cancelled: the documents re-indexed so far keep their new vectors, the rest their old ones.
            await prisma.course.update({ where: { id: courseId }, data: { searchVersion: { increment: 1 } } });
            log.info({ courseId, done: i, documents: documents.length }, 're-index stopped');
            return 'cancelled';
          }
          const rows = await prisma.chunk.findMany({
            where: { documentId: doc.id },
            select: { id: true, position: true, text: true },
            orderBy: { position: 'asc' },
          });
          const points = await retrieval.pointsFor(courseId, doc.id, rows);
          if (retrieval.store.kind === 'embedded') {
            await prisma.$transaction(
              async (tx) => {
                await retrieval.write(tx, courseId, doc.id, points);
                await tx.$executeRaw`
              UPDATE "Chunk" SET "tokenCount" = x.n
              FROM unnest(${points.map((p) => p.id)}::text[], ${points.map((p) => p.terms.length)}::int[]) AS x(id, n)
              WHERE "Chunk".id = x.id`;
              },
              { timeout: 120_000, maxWait: 10_000 },
            );
          } else {
            await retrieval.write(null, courseId, doc.id, points);
          }
          chunks += rows.length;
          await tasks.progress(taskId, (i + 1) / documents.length, `Re-indexed ${i + 1} of ${documents.length} documents`);
        }
        const completed = await prisma.$transaction(async (tx) => {
          await tx.course.update({ where: { id: courseId }, data: { searchVersion: { increment: 1 } } });
          return tasks.completeIn(tx, taskId, `Re-indexed ${chunks} passages in ${documents.length} documents`);
        });
        await tasks.announce(completed);
        log.info({ courseId, documents: documents.length, chunks }, 'course re-indexed');
        return 'completed';
      },
    );
  };
}
