import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';

/**
 * The answer cache: the same normalised question over the same retrieved
 * passages (the course's search version and the passages' ids), with the same
 * engine, model, mode and prompt version, replays the stored answer instead of
 * calling the model. History is not part of the key: a grounded answer to the
 * same standalone question over the same passages is reusable.
 */
export const cachedAnswerSchema = z.object({
  content: z.string(),
  citations: z.array(
    z.object({
      index: z.number(),
      chunkId: z.string(),
      documentId: z.string(),
      pageStart: z.number(),
      pageEnd: z.number(),
      quote: z.string(),
    }),
  ),
  grounded: z.boolean(),
  model: z.string().nullable(),
  droppedMarkers: z.number(),
});
export type CachedAnswer = z.infer<typeof cachedAnswerSchema>;

export interface AnswerCacheKey {
  promptVersion: string;
  engine: 'OFFLINE' | 'MODEL';
  model: string | null;
  mode: 'EXPLAIN' | 'SOCRATIC';
  question: string;
  courseId: string;
  searchVersion: number;
  chunkIds: string[];
}

/** Case, punctuation and spacing do not make a question different. */
export function normaliseQuestion(question: string): string {
  return question
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

export function answerCacheKey(k: AnswerCacheKey): string {
  const canonical = JSON.stringify([
    k.promptVersion,
    k.engine,
    k.model,
    k.mode,
    normaliseQuestion(k.question),
    k.courseId,
    k.searchVersion,
    k.chunkIds,
  ]);
  return `tutor:answer:${createHash('sha256').update(canonical).digest('hex')}`;
}

export function createAnswerCache(redis: Redis, ttlS: number) {
  return {
    async get(key: string): Promise<CachedAnswer | undefined> {
      const raw = await redis.get(key);
      if (!raw) return undefined;
      const parsed = cachedAnswerSchema.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : undefined;
    },
    async set(key: string, answer: CachedAnswer) {
      if (ttlS > 0) await redis.set(key, JSON.stringify(answer), 'EX', ttlS);
    },
  };
}
export type AnswerCache = ReturnType<typeof createAnswerCache>;
