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

  it('decides a request charged all at once exactly as its first point and then the rest (the former two calls)', async () => {
    const limiter = createRateLimiter(redis, { windowS: 30, perRole: { STUDENT: 40, TEACHER: 40, ADMIN: 40 } });
    const once = { userId: `u-${randomUUID()}`, role: 'STUDENT' as const };
    const twice = { userId: `u-${randomUUID()}`, role: 'STUDENT' as const };
    // Costs as the query guard prices them (points >= 1). At 38 of 40 the 5-point request has its
    // first point but not the rest; every request after it is refused as well.
    const costs = [1, 1, 3, 1, 15, 1, 5, 2, 1, 8, 5, 1, 1, 9];
    const decisions = [];
    for (const [i, points] of costs.entries()) {
      const folded = await limiter.consume(once, points);
      // Before: one point before the body was read, then what the cost adds when it was priced.
      const first = await limiter.consume(twice);
      const former = first.allowed && points > 1 ? await limiter.consume(twice, points - 1) : first;
      // The two users' windows started a moment apart: their retry times may differ by a second.
      const { retryAfterS: a, ...foldedRest } = { retryAfterS: 0, ...folded };
      const { retryAfterS: b, ...formerRest } = { retryAfterS: 0, ...former };
      expect({ request: i, points, decision: foldedRest }).toEqual({ request: i, points, decision: formerRest });
      expect(Math.abs(a - b)).toBeLessThanOrEqual(1);
      decisions.push(folded.allowed);
    }
    expect(decisions).toEqual([true, true, true, true, true, true, true, true, true, true, false, false, false, false]);
    expect(limiter.knownRefusal(once)).toMatchObject({ allowed: false, limit: 40 });
  });

  it('remembers a refusal for the rest of the window, per user, so the next request needs no Redis call', async () => {
    const limiter = createRateLimiter(redis, { windowS: 2, perRole: { STUDENT: 2, TEACHER: 2, ADMIN: 2 } });
    const student = { userId: `u-${randomUUID()}`, role: 'STUDENT' as const };
    expect(limiter.knownRefusal(student)).toBeUndefined();
    expect((await limiter.consume(student, 2)).allowed).toBe(true);
    // At the limit but not over it: nothing refused yet.
    expect(limiter.knownRefusal(student)).toBeUndefined();
    const refused = await limiter.consume(student);
    expect(refused.allowed).toBe(false);
    const known = limiter.knownRefusal(student);
    expect(known).toEqual({ allowed: false, limit: 2, retryAfterS: expect.any(Number) });
    expect(known!.retryAfterS).toBeGreaterThanOrEqual(1);
    expect(known!.retryAfterS).toBeLessThanOrEqual(2);
    // Redis agrees: the count is over the limit until the window ends.
    expect(Number(await redis.get(`rl:STUDENT:${student.userId}`))).toBe(3);
    expect(limiter.knownRefusal({ ...student, userId: `${student.userId}-other` })).toBeUndefined();
    expect(limiter.knownRefusal({ ...student, role: 'TEACHER' })).toBeUndefined();
    await new Promise((r) => setTimeout(r, 2100));
    expect(limiter.knownRefusal(student)).toBeUndefined();
    expect((await limiter.consume(student)).allowed).toBe(true);
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
