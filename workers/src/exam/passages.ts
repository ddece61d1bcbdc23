/**
 * The passages an exam is generated from: the chunks of the selected ready
 * documents (all ready documents when none were selected), in reading order
 * (documents oldest first, chunks by position). A large course is sampled:
 * at most `max` passages spread evenly over the whole material from a seeded
 * offset, so generation costs the same for a 50-page and a 2,000-page course
 * and still draws from all of it.
 *
 * Page breaks: chunks of PDFs never span pages here (pageStart === pageEnd),
 * so a question's page is exact; a passage over several pages (rare: other
 * formats are one page) cites its first page, marked inexact.
 */
import type { PrismaClient } from '@lib/db/client.js';
import type { ExamPassage } from '@lib/exam/index.js';

export interface PassageSelection {
  passages: ExamPassage[];
  /** Passages of the material before sampling. */
  total: number;
}

/** `max` items evenly spaced over `items` (all of them when there are no more), from a seeded offset. */
export function spread<T>(items: readonly T[], max: number, seed: number): T[] {
  if (items.length <= max) return [...items];
  const step = items.length / max;
  const offset = (Math.abs(seed) % 1000) / 1000;
  return Array.from({ length: max }, (_, i) => items[Math.min(items.length - 1, Math.floor((i + offset) * step))]!);
}

export async function loadPassages(
  prisma: PrismaClient,
  exam: { courseId: string; documentIds: string[]; seed: number },
  max: number,
): Promise<PassageSelection> {
  const where = {
    courseId: exam.courseId,
    document: { status: 'READY' as const },
    ...(exam.documentIds.length ? { documentId: { in: exam.documentIds } } : {}),
  };
  const ids = await prisma.chunk.findMany({
    where,
    select: { id: true },
    orderBy: [{ document: { createdAt: 'asc' } }, { documentId: 'asc' }, { position: 'asc' }],
  });
  const chosen = spread(
    ids.map((r) => r.id),
    max,
    exam.seed,
  );
  const rows = await prisma.chunk.findMany({
    where: { id: { in: chosen } },
    select: { id: true, documentId: true, pageStart: true, pageEnd: true, text: true, document: { select: { title: true } } },
  });
  const byId = new Map(rows.map((r) => [r.id, r]));
  const passages = chosen.flatMap((id) => {
    const c = byId.get(id);
    return c
      ? [
          {
            chunkId: c.id,
            documentId: c.documentId,
            documentTitle: c.document.title,
            pageStart: c.pageStart,
            pageEnd: c.pageEnd,
            text: c.text,
          },
        ]
      : [];
  });
  return { passages, total: ids.length };
}
