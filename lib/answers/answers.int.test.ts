import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { testInfra } from '../../tests/support/infra.js';
import { createTokenBudget } from './budget.js';
import { answerCacheKey, createAnswerCache, type AnswerCacheKey } from './cache.js';
import {
  answerKey,
  createAnswerHub,
  createAnswerPublisher,
  readAnswerHistory,
  readAnswerStart,
  recordAnswerRow,
  textOf,
  type AnswerStreamEvent,
} from './stream.js';

describe('answer streams, budgets and the answer cache in Redis', () => {
  let redis: Redis;
  let subscriber: Redis;
  beforeAll(() => {
    redis = new Redis(testInfra().REDIS_URL);
    subscriber = new Redis(testInfra().REDIS_URL);
  });
  afterAll(async () => {
    await Promise.all([redis.quit(), subscriber.quit()]);
  });

  it('numbers events in the order they are stored and announces each once', async () => {
    const id = randomUUID();
    const hub = createAnswerHub(subscriber);
    const live: AnswerStreamEvent[] = [];
    const unlisten = await hub.listen(id, (e) => live.push(e));
    const publisher = createAnswerPublisher(redis);
    // Published concurrently: the stream's order must still be the sequence order.
    await Promise.all(Array.from({ length: 20 }, (_, i) => publisher.publish(id, { type: 'delta', text: `${i} ` }, 1)));
    await publisher.publish(id, { type: 'done', status: 'COMPLETE' });
    const history = await readAnswerHistory(redis, id);
    expect(history.map((e) => e.seq)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    await new Promise((r) => setTimeout(r, 100));
    expect(live.map((e) => e.seq).sort((a, b) => a - b)).toEqual(history.map((e) => e.seq));
    expect(await redis.ttl(answerKey(id))).toBeGreaterThan(3000);
    unlisten();
    expect(hub.size()).toBe(0);
  });

  it('refuses the events of an attempt once a later one has started', async () => {
    const id = randomUUID();
    const publisher = createAnswerPublisher(redis);
    expect(await publisher.publish(id, { type: 'delta', text: 'first try ' }, 1)).not.toBeNull();
    expect(await publisher.publish(id, { type: 'reset' }, 2)).not.toBeNull();
    expect(await publisher.publish(id, { type: 'delta', text: 'stale' }, 1)).toBeNull();
    expect(await publisher.publish(id, { type: 'delta', text: 'second try' }, 2)).not.toBeNull();
    // Not tied to an attempt: always published.
    expect(await publisher.publish(id, { type: 'done', status: 'COMPLETE' })).not.toBeNull();
    const history = await readAnswerHistory(redis, id);
    expect(history.map((e) => e.type)).toEqual(['delta', 'reset', 'delta', 'done']);
    expect(textOf(history)).toBe('second try');
  });

  it('keeps the answer’s row at the head of its stream, apart from its events, with the stream’s expiry', async () => {
    const id = randomUUID();
    const row = { id, userId: 'u1', status: 'GENERATING', content: '', createdAt: new Date('2026-12-01T09:00:00Z') };
    await recordAnswerRow(redis, id, row);
    // The row alone gives the stream its expiry (an answer whose worker never publishes still goes).
    expect(await redis.ttl(answerKey(id))).toBeGreaterThan(3000);
    const publisher = createAnswerPublisher(redis);
    await publisher.publish(id, { type: 'delta', text: 'Hel' }, 1);
    await publisher.publish(id, { type: 'delta', text: 'lo' }, 1);
    const start = await readAnswerStart(redis, id);
    expect(start.row).toEqual({ ...row, createdAt: '2026-12-01T09:00:00.000Z' });
    // The row is not an event: sequence numbers start at 1 and old readers see only events.
    expect(start.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(await readAnswerHistory(redis, id)).toEqual(start.events);
    // No row (a stream written before rows were recorded, or one that expired): none read.
    const other = randomUUID();
    await createAnswerPublisher(redis).publish(other, { type: 'delta', text: 'x' }, 1);
    expect((await readAnswerStart(redis, other)).row).toBeUndefined();
    await redis.xadd(answerKey(other), '*', 'row', 'not json');
    expect((await readAnswerStart(redis, other)).row).toBeUndefined();
  });

  it('leaves no listener behind when subscribing fails', async () => {
    const broken = new Redis(testInfra().REDIS_URL, { lazyConnect: true, enableOfflineQueue: false });
    const hub = createAnswerHub(broken);
    await expect(hub.listen(randomUUID(), () => undefined)).rejects.toThrow();
    expect(hub.size()).toBe(0);
    broken.disconnect();
  });

  it('counts tokens per user and UTC day, and says when the budget resets', async () => {
    const budget = createTokenBudget(redis, 1000);
    const user = `u-${randomUUID()}`;
    const noon = new Date('2026-12-01T12:00:00Z');
    expect((await budget.status(user, noon)).exhausted).toBe(false);
    await budget.add(user, 600, noon);
    await budget.add(user, 400, noon);
    const spent = await budget.status(user, noon);
    expect(spent).toEqual({ used: 1000, limit: 1000, exhausted: true, resetsAt: new Date('2026-12-02T00:00:00Z') });
    // The next day starts afresh; another user is unaffected.
    expect((await budget.status(user, new Date('2026-12-02T00:00:01Z'))).used).toBe(0);
    expect((await budget.status(`v-${randomUUID()}`, noon)).used).toBe(0);
    // 0 means no limit.
    const unlimited = createTokenBudget(redis, 0);
    await unlimited.add(user, 5000, noon);
    expect((await unlimited.status(user, noon)).exhausted).toBe(false);
  });

  it('keys cached answers by the normalised question and everything that shapes the answer', async () => {
    const base: AnswerCacheKey = {
      promptVersion: 'p1',
      engine: 'MODEL',
      model: 'm',
      mode: 'EXPLAIN',
      question: 'What is a Newton?',
      courseId: randomUUID(),
      searchVersion: 3,
      chunkIds: ['a:0', 'a:1'],
    };
    const key = answerCacheKey(base);
    expect(answerCacheKey({ ...base, question: '  what is a newton ' })).toBe(key);
    for (const change of [
      { promptVersion: 'p2' },
      { model: 'other' },
      { mode: 'SOCRATIC' as const },
      { engine: 'OFFLINE' as const },
      { searchVersion: 4 },
      { chunkIds: ['a:1', 'a:0'] },
      { question: 'What is a joule?' },
    ]) {
      expect(answerCacheKey({ ...base, ...change })).not.toBe(key);
    }
    const cache = createAnswerCache(redis, 60);
    const answer = { content: 'A unit [1].', citations: [], grounded: true, model: 'm', droppedMarkers: 0 };
    await cache.set(key, answer);
    expect(await cache.get(key)).toEqual(answer);
    expect(await redis.ttl(key)).toBeGreaterThan(50);
    expect(await createAnswerCache(redis, 0).get(answerCacheKey({ ...base, question: 'never stored' }))).toBeUndefined();
  });
});
