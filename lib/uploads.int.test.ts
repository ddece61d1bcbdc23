import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { testInfra } from '../tests/support/infra.js';
import { createDailyUploadQuota, dailyQuotaRefusal, formatBytes } from './uploads.js';

describe('the daily upload quota in Redis', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(testInfra().REDIS_URL);
  });
  afterAll(async () => {
    await redis.quit();
  });

  const noon = new Date('2026-12-01T12:00:00Z');

  it('never counts past the limit, however many reservations arrive together', async () => {
    const quota = createDailyUploadQuota(redis, 1000);
    const user = `u-${randomUUID()}`;
    const results = await Promise.all(Array.from({ length: 30 }, () => quota.reserve(user, 100, 100, noon)));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    const refused = results.find((r) => !r.ok);
    expect(refused).toEqual({
      ok: false,
      usage: { usedBytes: 1000, limitBytes: 1000, resetsAt: new Date('2026-12-02T00:00:00Z'), retryAfter: 12 * 3600 },
    });
    expect((await quota.usage(user, noon)).usedBytes).toBe(1000);
  });

  it('reserves ahead only as far as the limit allows, and gives back what is released', async () => {
    const quota = createDailyUploadQuota(redis, 1000);
    const user = `u-${randomUUID()}`;
    expect(await quota.reserve(user, 100, 800, noon)).toEqual({ ok: true, granted: 800, day: '2026-12-01' });
    // 200 left: 50 needed, 500 wanted, 200 granted.
    expect(await quota.reserve(user, 50, 500, noon)).toEqual({ ok: true, granted: 200, day: '2026-12-01' });
    expect(await quota.reserve(user, 1, 1, noon)).toMatchObject({ ok: false });
    await quota.release(user, 700, '2026-12-01');
    expect((await quota.usage(user, noon)).usedBytes).toBe(300);
    // Never below zero.
    await quota.release(user, 5000, '2026-12-01');
    expect((await quota.usage(user, noon)).usedBytes).toBe(0);
  });

  it('starts afresh each UTC day, keeps users apart, and counts nothing without a limit', async () => {
    const quota = createDailyUploadQuota(redis, 1000);
    const user = `u-${randomUUID()}`;
    await quota.reserve(user, 1000, 1000, noon);
    expect(await quota.reserve(user, 1, 1, noon)).toMatchObject({ ok: false });
    expect(await quota.reserve(user, 1000, 1000, new Date('2026-12-02T00:00:01Z'))).toMatchObject({ ok: true, granted: 1000 });
    expect(await quota.reserve(`v-${randomUUID()}`, 1000, 1000, noon)).toMatchObject({ ok: true });
    const unlimited = createDailyUploadQuota(redis, 0);
    expect(unlimited.enabled).toBe(false);
    expect(await unlimited.reserve(user, 10 ** 12, 10 ** 12, noon)).toMatchObject({ ok: true });
    expect((await unlimited.usage(user, noon)).usedBytes).toBe(0);
  });

  it('explains a refusal in words and in extensions', () => {
    const refusal = dailyQuotaRefusal(
      { usedBytes: 2 * 1024 ** 3, limitBytes: 2 * 1024 ** 3, resetsAt: new Date('2026-12-02T00:00:00Z'), retryAfter: 600 },
      5 * 1024 ** 2,
    );
    expect(refusal.message).toBe(
      'Daily upload limit reached: 2 GiB of 2 GiB used today, 5 MiB more asked; the count starts again at 2026-12-02T00:00:00.000Z (in 600 s)',
    );
    expect(refusal.extensions).toEqual({
      retryAfter: 600,
      resetsAt: '2026-12-02T00:00:00.000Z',
      limitBytes: 2 * 1024 ** 3,
      usedBytes: 2 * 1024 ** 3,
      requestedBytes: 5 * 1024 ** 2,
    });
    expect(formatBytes(512)).toBe('512 bytes');
    expect(formatBytes(1536)).toBe('1.5 KiB');
  });
});
