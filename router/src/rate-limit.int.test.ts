import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { testInfra } from '../../tests/support/infra.js';
import { createRateLimiter } from './rate-limit.js';

describe('per-user rate limit in Redis', () => {
  let redis: Redis;
  before(() => {
    redis = new Redis(testInfra().REDIS_URL, { maxRetriesPerRequest: 1 });
  });
  after(() => redis?.quit());

  it('allows N requests in the window and refuses the N+1th with a retry time', async () => {
    const limiter = createRateLimiter(redis, { windowS: 30, perRole: { STUDENT: 3, TEACHER: 10, ADMIN: 100 } });
    const student = { userId: `u-${randomUUID()}`, role: 'STUDENT' as const };
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await limiter.consume(student));
    assert.deepEqual(
      decisions.slice(0, 3).map((d) => d.allowed),
      [true, true, true],
    );
    assert.deepEqual(
      decisions.slice(0, 3).map((d) => (d.allowed ? d.remaining : -1)),
      [2, 1, 0],
    );
    const refused = decisions[3]!;
    assert.equal(refused.allowed, false);
    assert.ok(!refused.allowed && refused.retryAfterS >= 1 && refused.retryAfterS <= 30);
  });

  it('counts atomically across concurrent requests and across limiter instances (router replicas)', async () => {
    const replicaA = createRateLimiter(redis, { windowS: 30, perRole: { STUDENT: 50, TEACHER: 50, ADMIN: 50 } });
    const replicaB = createRateLimiter(redis, { windowS: 30, perRole: { STUDENT: 50, TEACHER: 50, ADMIN: 50 } });
    const user = { userId: `u-${randomUUID()}`, role: 'TEACHER' as const };
    const results = await Promise.all(Array.from({ length: 80 }, (_, i) => (i % 2 ? replicaA : replicaB).consume(user)));
    assert.equal(results.filter((r) => r.allowed).length, 50);
    assert.equal(results.filter((r) => !r.allowed).length, 30);
  });

  it('gives each role its own budget and opens again after the window', async () => {
    const limiter = createRateLimiter(redis, { windowS: 1, perRole: { STUDENT: 1, TEACHER: 2, ADMIN: 3 } });
    const id = `u-${randomUUID()}`;
    assert.equal((await limiter.consume({ userId: id, role: 'STUDENT' })).allowed, true);
    assert.equal((await limiter.consume({ userId: id, role: 'STUDENT' })).allowed, false);
    assert.equal((await limiter.consume({ userId: `${id}-t`, role: 'TEACHER' })).allowed, true);
    assert.equal((await limiter.consume({ userId: `${id}-t`, role: 'TEACHER' })).allowed, true);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await limiter.consume({ userId: id, role: 'STUDENT' })).allowed, true);
  });
});
