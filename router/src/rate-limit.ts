import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Identity, Role } from '@lib/identity.js';

export interface RateLimitConfig {
  windowS: number;
  perRole: Record<Role, number>;
}

export type RateDecision = { allowed: true; limit: number; remaining: number } | { allowed: false; limit: number; retryAfterS: number };

export interface RateLimiter {
  /** Takes `points` (default 1) from the user's budget: a request's first point, or what its cost adds. */
  consume(identity: Identity, points?: number): Promise<RateDecision>;
}

/**
 * Per-user fixed-window limits in Redis (atomic, shared by every router
 * replica), one budget of points per role: a request takes one point, and an
 * operation what its estimated cost adds (see limits.ts). If Redis is unreachable each replica falls
 * back to an in-memory limiter instead of failing every request.
 */
export function createRateLimiter(redis: Redis, { windowS, perRole }: RateLimitConfig): RateLimiter {
  const limiters = Object.fromEntries(
    (Object.entries(perRole) as [Role, number][]).map(([role, points]) => [
      role,
      new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: `rl:${role}`,
        points,
        duration: windowS,
        insuranceLimiter: new RateLimiterMemory({ keyPrefix: `rl-mem:${role}`, points, duration: windowS }),
      }),
    ]),
  ) as Record<Role, RateLimiterRedis>;

  return {
    async consume(identity, points = 1) {
      const limit = perRole[identity.role];
      try {
        const res = await limiters[identity.role].consume(identity.userId, Math.max(1, Math.ceil(points)));
        return { allowed: true, limit, remaining: res.remainingPoints };
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) {
          return { allowed: false, limit, retryAfterS: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
        }
        throw rejection;
      }
    },
  };
}
