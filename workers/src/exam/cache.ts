/**
 * The exam generator's LLM-level cache (as the tutor's answer cache): a model
 * answer is replayed instead of calling the model again when everything it
 * depended on is the same — prompt version, model, the course's search
 * version (its material), the passages' ids, the parameters (question count,
 * types, difficulty) and the messages themselves (a repair request carries the
 * answer it repairs). Only answers that parsed as JSON are stored.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { ChatMessage } from '@lib/model/chat.js';

export interface ExamCacheKey {
  promptVersion: string;
  model: string;
  courseId: string;
  searchVersion: number;
  chunkIds: string[];
  params: { questionCount: number; types: string[]; difficulty: string };
  messages: ChatMessage[];
}

export function examCacheKey(k: ExamCacheKey): string {
  const messages = createHash('sha256').update(JSON.stringify(k.messages)).digest('hex');
  const canonical = JSON.stringify([
    k.promptVersion,
    k.model,
    k.courseId,
    k.searchVersion,
    k.chunkIds,
    k.params.questionCount,
    [...k.params.types].sort(),
    k.params.difficulty,
    messages,
  ]);
  return `exam:model:${createHash('sha256').update(canonical).digest('hex')}`;
}

const cachedSchema = z.object({ text: z.string(), model: z.string() });
export type CachedExamAnswer = z.infer<typeof cachedSchema>;

export interface ExamCache {
  get(key: string): Promise<CachedExamAnswer | undefined>;
  set(key: string, value: CachedExamAnswer): Promise<void>;
}

export function createExamCache(redis: Redis, ttlS: number): ExamCache {
  return {
    async get(key) {
      if (ttlS <= 0) return undefined;
      const raw = await redis.get(key);
      if (!raw) return undefined;
      const parsed = cachedSchema.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : undefined;
    },
    async set(key, value) {
      if (ttlS > 0) await redis.set(key, JSON.stringify(value), 'EX', ttlS);
    },
  };
}

/** No cache (tests, benchmarks). */
export const noExamCache: ExamCache = { get: async () => undefined, set: async () => undefined };
