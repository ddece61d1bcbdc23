/**
 * The database side of exams shared by the exam subgraph and the exam worker: a draft's
 * columns, and the passages an exam is made from. (The rest of lib/exam is pure.)
 *
 * Passages: the chunks of the selected ready documents (all ready documents when none are
 * selected), in reading order (documents oldest first, chunks by position). A large course is
 * sampled: at most `max` passages spread evenly over the whole material from a seeded offset,
 * so generation costs the same for a 50-page and a 2,000-page course and still draws from all
 * of it. Chunks of PDFs never span pages here, so a question's page is exact.
 */
import type { Prisma, PrismaClient } from '../db/client.js';
import type { ExamPassage, ExamQuestionDraft } from './types.js';

/** The columns of a draft (fields of other types cleared). */
export function draftColumns(d: ExamQuestionDraft) {
  return {
    type: d.type,
    stem: d.stem,
    options: d.type === 'MULTIPLE_CHOICE' ? (d.options ?? []) : [],
    answerIndex: d.type === 'MULTIPLE_CHOICE' ? (d.answerIndex ?? null) : null,
    answerBool: d.type === 'TRUE_FALSE' ? (d.answerBool ?? null) : null,
    answerText: d.type === 'FILL_IN_THE_BLANK' || d.type === 'SHORT_ANSWER' ? (d.answerText ?? null) : null,
    acceptedAnswers: d.type === 'FILL_IN_THE_BLANK' ? (d.acceptedAnswers ?? []) : [],
    keyTerms: d.type === 'SHORT_ANSWER' ? (d.keyTerms ?? []) : [],
    explanation: d.explanation,
    chunkId: d.source.chunkId,
    documentId: d.source.documentId,
    documentTitle: d.source.documentTitle,
    pageStart: d.source.pageStart,
    pageEnd: d.source.pageEnd,
    page: d.source.page,
    pageExact: d.source.pageExact ?? true,
    sentence: d.source.sentence,
  } satisfies Partial<Prisma.ExamQuestionUncheckedCreateInput>;
}

type ChunkRow = { id: string; documentId: string; pageStart: number; pageEnd: number; text: string; document: { title: string } };

export function toPassage(c: ChunkRow): ExamPassage {
  return {
    chunkId: c.id,
    documentId: c.documentId,
    documentTitle: c.document.title,
    pageStart: c.pageStart,
    pageEnd: c.pageEnd,
    text: c.text,
  };
}

const chunkSelect = {
  id: true,
  documentId: true,
  pageStart: true,
  pageEnd: true,
  text: true,
  document: { select: { title: true } },
} as const;

/** Passages by id, of ready documents of one course. */
export async function passagesById(prisma: PrismaClient, courseId: string, ids: readonly string[]): Promise<Map<string, ExamPassage>> {
  const rows = await prisma.chunk.findMany({
    where: { id: { in: [...ids] }, courseId, document: { status: 'READY' } },
    select: chunkSelect,
  });
  return new Map(rows.map((r) => [r.id, toPassage(r)]));
}

/**
 * At most `max` passages of the course's ready documents (or of `documentIds`), spread evenly
 * over the material in reading order (documents oldest first, passages by position), starting
 * at an offset drawn from the seed.
 */
export async function spreadPassages(
  prisma: PrismaClient,
  courseId: string,
  documentIds: readonly string[],
  max: number,
  seed: number,
): Promise<{ passages: ExamPassage[]; total: number }> {
  const where = {
    courseId,
    document: { status: 'READY' as const },
    ...(documentIds.length ? { documentId: { in: [...documentIds] } } : {}),
  };
  const ids = await prisma.chunk.findMany({
    where,
    select: { id: true },
    orderBy: [{ document: { createdAt: 'asc' } }, { documentId: 'asc' }, { position: 'asc' }],
  });
  const chosen = spread(
    ids.map((r) => r.id),
    max,
    seed,
  );
  const byId = await passagesById(prisma, courseId, chosen);
  return { passages: chosen.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : [])), total: ids.length };
}

/** `max` items evenly spaced over `items` (all of them when there are no more), from a seeded offset. */
export function spread<T>(items: readonly T[], max: number, seed: number): T[] {
  if (items.length <= max) return [...items];
  const step = items.length / max;
  const offset = (Math.abs(seed) % 1000) / 1000;
  return Array.from({ length: max }, (_, i) => items[Math.min(items.length - 1, Math.floor((i + offset) * step))]!);
}
