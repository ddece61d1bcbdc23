import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Identity, Role } from '@lib/identity.js';

export interface RateLimitConfig {
  windowS: number;
  perRole: Record<Role, number>;
}

export type RateDecision = { allowed: true; limit: number; remaining: number } | { allowed: false; limit: number; retryAfterS: number };

export type RateRefusal = Extract<RateDecision, { allowed: false }>;

export interface RateLimiter {
  /** Takes `points` (default 1) from the user's budget: all that a request costs, in one call. */
  consume(identity: Identity, points?: number): Promise<RateDecision>;
  /**
   * The refusal this replica already had from Redis for the user's current window, if any: no
   * Redis call. Within a fixed window the count only grows, so once one request was refused every
   * later one is, until the window ends; the router answers those before reading their body.
   */
  knownRefusal(identity: Identity): RateRefusal | undefined;
}

/**
 * Per-user fixed-window limits in Redis (atomic, shared by every router
 * replica), one budget of points per role: a request takes one point, and an
 * operation what its estimated cost adds (see limits.ts). If Redis is unreachable each replica falls
 * back to an in-memory limiter instead of failing every request.
 *
 * At most one Redis call per user is in flight in a replica: what that user's concurrent requests
 * ask meanwhile is charged as one batch (one INCRBY of the sum) when it returns, and the batch's
 * result is shared out in arrival order exactly as separate calls would have been (request i
 * is allowed iff the count after it is within the limit). A busy user costs the router and
 * Redis one round trip per batch, not per request.
 */
/** Users remembered as refused for their window, at most this many (then forgotten: Redis decides again). */
const MAX_REFUSED = 50_000;

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

  interface Waiting {
    points: number;
    resolve(decision: RateDecision): void;
    reject(err: unknown): void;
  }
  /** Per role and user: the requests waiting for the call in flight to return (present while one is). */
  const queues = new Map<string, Waiting[]>();
  /** Per role and user: when the window in which a request was refused ends (ms since the epoch). */
  const refusedUntil = new Map<string, number>();
  const keyOf = (identity: Identity) => `${identity.role}\u0000${identity.userId}`;

  const charge = async (identity: Identity, batch: Waiting[]) => {
    const limit = perRole[identity.role];
    const total = batch.reduce((sum, w) => sum + w.points, 0);
    let res: RateLimiterRes;
    try {
      res = await limiters[identity.role].consume(identity.userId, total);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) {
        for (const w of batch) w.reject(rejection);
        return;
      }
      res = rejection;
    }
    // The count before this batch, then each request's share in turn.
    let consumed = res.consumedPoints - total;
    const retryAfterS = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
    if (res.consumedPoints > limit) {
      if (refusedUntil.size >= MAX_REFUSED) refusedUntil.clear();
      refusedUntil.set(keyOf(identity), Date.now() + res.msBeforeNext);
    }
    for (const w of batch) {
      consumed += w.points;
      w.resolve(
        consumed <= limit ? { allowed: true, limit, remaining: Math.max(limit - consumed, 0) } : { allowed: false, limit, retryAfterS },
      );
    }
  };

  const run = async (key: string, identity: Identity, batch: Waiting[]) => {
    queues.set(key, []);
    try {
      await charge(identity, batch);
    } finally {
      const next = queues.get(key)!;
      if (next.length) void run(key, identity, next);
      else queues.delete(key);
    }
  };

  return {
    consume(identity, points = 1) {
      return new Promise<RateDecision>((resolve, reject) => {
        const waiting = { points: Math.max(1, Math.ceil(points)), resolve, reject };
        const key = keyOf(identity);
        const queue = queues.get(key);
        if (queue) queue.push(waiting);
        else void run(key, identity, [waiting]);
      });
    },
    knownRefusal(identity) {
      const key = keyOf(identity);
      const until = refusedUntil.get(key);
      if (until === undefined) return undefined;
      const ms = until - Date.now();
      if (ms <= 0) {
        refusedUntil.delete(key);
        return undefined;
      }
      return { allowed: false, limit: perRole[identity.role], retryAfterS: Math.max(1, Math.ceil(ms / 1000)) };
    },
  };
}
