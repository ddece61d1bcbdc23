import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { testInfra } from '../../tests/support/infra.js';
import { createRateLimiter } from './rate-limit.js';

describe('per-user rate limit in Redis', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(testInfra().REDIS_URL, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await redis?.quit();
  });

  it('allows N requests in the window and refuses the N+1th with a retry time', async () => {
    const limiter = createRateLimiter(redis, { windowS: 30, perRole: { STUDENT: 3, TEACHER: 10, ADMIN: 100 } });
    const student = { userId: `u-${randomUUID()}`, role: 'STUDENT' as const };
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await limiter.consume(student));
    expect(decisions.slice(0, 3).map((d) => d.allowed)).toEqual([true, true, true]);
    expect(decisions.slice(0, 3).map((d) => (d.allowed ? d.remaining : -1))).toEqual([2, 1, 0]);
    const refused = decisions[3]!;
    expect(refused.allowed).toBe(false);
    const retryAfterS = refused.allowed ? undefined : refused.retryAfterS;
    expect(retryAfterS).toBeGreaterThanOrEqual(1);
    expect(retryAfterS).toBeLessThanOrEqual(30);
  });

  it('takes the points an operation costs: an expensive one uses the budget up faster', async () => {
    const limiter = createRateLimiter(redis, { windowS: 30, perRole: { STUDENT: 10, TEACHER: 10, ADMIN: 10 } });
    const student = { userId: `u-${randomUUID()}`, role: 'STUDENT' as const };
    const first = await limiter.consume(student);
    expect(first).toEqual({ allowed: true, limit: 10, remaining: 9 });
    const costly = await limiter.consume(student, 7);
    expect(costly).toEqual({ allowed: true, limit: 10, remaining: 2 });
    // Three points are not there any more: refused, with a retry time.
    const refused = await limiter.consume(student, 3);
    expect(refused.allowed).toBe(false);
    expect(refused.allowed ? 0 : refused.retryAfterS).toBeGreaterThanOrEqual(1);
  });

  it('counts atomically across concurrent requests and across limiter instances (router replicas)', async () => {
    const replicaA = createRateLimiter(redis, { windowS: 30, perRole: { STUDENT: 50, TEACHER: 50, ADMIN: 50 } });
    const replicaB = createRateLimiter(redis, { windowS: 30, perRole: { STUDENT: 50, TEACHER: 50, ADMIN: 50 } });
    const user = { userId: `u-${randomUUID()}`, role: 'TEACHER' as const };
    const results = await Promise.all(Array.from({ length: 80 }, (_, i) => (i % 2 ? replicaA : replicaB).consume(user)));
    expect(results.filter((r) => r.allowed)).toHaveLength(50);
    expect(results.filter((r) => !r.allowed)).toHaveLength(30);
  });

  it("charges a user's concurrent requests in batches, each decided as if it had been charged alone, in order", async () => {
    const limiter = createRateLimiter(redis, { windowS: 30, perRole: { STUDENT: 10, TEACHER: 10, ADMIN: 10 } });
    const student = { userId: `u-${randomUUID()}`, role: 'STUDENT' as const };
    const decisions = await Promise.all([1, 3, 1, 6, 1].map((points) => limiter.consume(student, points)));
    expect(decisions.slice(0, 3)).toEqual([
      { allowed: true, limit: 10, remaining: 9 },
      { allowed: true, limit: 10, remaining: 6 },
      { allowed: true, limit: 10, remaining: 5 },
    ]);
    expect(decisions.slice(3).map((d) => d.allowed)).toEqual([false, false]);
    // All of it was counted in Redis, refused requests included (as separate calls would have).
    expect(Number(await redis.get(`rl:STUDENT:${student.userId}`))).toBe(12);
  });

  it('gives each role its own budget and opens again after the window', async () => {
    const limiter = createRateLimiter(redis, { windowS: 1, perRole: { STUDENT: 1, TEACHER: 2, ADMIN: 3 } });
    const id = `u-${randomUUID()}`;
    expect((await limiter.consume({ userId: id, role: 'STUDENT' })).allowed).toBe(true);
    expect((await limiter.consume({ userId: id, role: 'STUDENT' })).allowed).toBe(false);
    expect((await limiter.consume({ userId: `${id}-t`, role: 'TEACHER' })).allowed).toBe(true);
    expect((await limiter.consume({ userId: `${id}-t`, role: 'TEACHER' })).allowed).toBe(true);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await limiter.consume({ userId: id, role: 'STUDENT' })).allowed).toBe(true);
  });
});
