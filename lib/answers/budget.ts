import type { Redis } from 'ioredis';

/**
 * A per-user daily budget of model tokens (prompt + completion), counted in
 * Redis per UTC day. Asking is refused once the day's use reaches the budget;
 * the answer that crosses it is still delivered (its size is not known ahead).
 */
export interface TokenBudget {
  /** Tokens a user may use a day; 0: no limit (asking never reads the count). */
  readonly limit: number;
  /** Tokens used today and when the count resets. */
  status(userId: string, now?: Date): Promise<{ used: number; limit: number; exhausted: boolean; resetsAt: Date }>;
  add(userId: string, tokens: number, now?: Date): Promise<number>;
}

const day = (now: Date) => now.toISOString().slice(0, 10);
const key = (userId: string, now: Date) => `tutor:tokens:${day(now)}:${userId}`;
const nextMidnight = (now: Date) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));

export function createTokenBudget(redis: Redis, limit: number): TokenBudget {
  return {
    limit,
    async status(userId, now = new Date()) {
      const used = Number((await redis.get(key(userId, now))) ?? 0);
      return { used, limit, exhausted: limit > 0 && used >= limit, resetsAt: nextMidnight(now) };
    },
    async add(userId, tokens, now = new Date()) {
      if (tokens <= 0) return Number((await redis.get(key(userId, now))) ?? 0);
      const k = key(userId, now);
      const [[, used]] = (await redis
        .multi()
        .incrby(k, tokens)
        .expire(k, 2 * 24 * 3600)
        .exec()) as [[null, number], unknown];
      return used;
    },
  };
}
