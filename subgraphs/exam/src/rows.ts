/**
 * Stored questions ↔ lib/exam's drafts, and course passages from Chunk rows.
 */
import type { ExamQuestion, Prisma, PrismaClient } from '@lib/db/client.js';
import type { ExamAnswer as AnswerValue, ExamPassage, ExamQuestionDraft } from '@lib/exam/index.js';

/** A stored question as lib/exam sees it (only the fields of its type). */
export function toDraft(q: ExamQuestion): ExamQuestionDraft {
  return {
    type: q.type,
    stem: q.stem,
    ...(q.type === 'MULTIPLE_CHOICE' ? { options: [...q.options], answerIndex: q.answerIndex ?? undefined } : {}),
    ...(q.type === 'TRUE_FALSE' ? { answerBool: q.answerBool ?? undefined } : {}),
    ...(q.type === 'FILL_IN_THE_BLANK' || q.type === 'SHORT_ANSWER' ? { answerText: q.answerText ?? undefined } : {}),
    ...(q.type === 'FILL_IN_THE_BLANK' && q.acceptedAnswers.length ? { acceptedAnswers: [...q.acceptedAnswers] } : {}),
    ...(q.type === 'SHORT_ANSWER' ? { keyTerms: [...q.keyTerms] } : {}),
    explanation: q.explanation,
    source: {
      chunkId: q.chunkId,
      documentId: q.documentId,
      documentTitle: q.documentTitle,
      pageStart: q.pageStart,
      pageEnd: q.pageEnd,
      page: q.page,
      pageExact: q.pageExact,
      sentence: q.sentence,
    },
  } as ExamQuestionDraft;
}

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

/** A stored answer value as lib/exam grades it. */
export function answerValue(value: Prisma.JsonValue | null): AnswerValue {
  return typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string' ? value : null;
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
): Promise<ExamPassage[]> {
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
  return chosen.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : []));
}

/** `max` items evenly spaced over `items` (all of them when there are no more), from a seeded offset. */
export function spread<T>(items: readonly T[], max: number, seed: number): T[] {
  if (items.length <= max) return [...items];
  const step = items.length / max;
  const offset = (Math.abs(seed) % 1000) / 1000;
  return Array.from({ length: max }, (_, i) => items[Math.min(items.length - 1, Math.floor((i + offset) * step))]!);
}
