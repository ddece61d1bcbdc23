/**
 * Stored questions ↔ lib/exam's drafts, and course passages from Chunk rows.
 */
import type { ExamQuestion, Prisma } from '@lib/db/client.js';
import type { ExamAnswer as AnswerValue, ExamQuestionDraft } from '@lib/exam/index.js';

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

/** A stored answer value as lib/exam grades it. */
export function answerValue(value: Prisma.JsonValue | null): AnswerValue {
  return typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string' ? value : null;
}
