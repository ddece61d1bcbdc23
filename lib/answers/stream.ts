import type { Redis } from 'ioredis';
import { z } from 'zod';

/**
 * How an answer's text travels from the worker that writes it to every router
 * that streams it to subscribers.
 *
 * Each answer has a Redis stream, `answer:<messageId>:events`, holding every
 * event in order with a sequence number, and a pub/sub channel of the same
 * name carrying the same events live. A reader subscribes to the channel
 * first, then reads the stream from its start (the text so far), then takes
 * live events whose sequence number is higher than the last one read: nothing
 * is lost and nothing is sent twice, however late it subscribes.
 *
 * Events: `delta` (text to append), `reset` (generation restarted after a
 * crash: the text so far is void) and `done` (the message reached a final
 * status; read it from the database). The stream expires an hour after its
 * last event: by then the message is final and its text is in the database.
 */
export const ANSWER_STREAM_TTL_S = 3600;

export const answerEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('delta'), seq: z.number().int().positive(), text: z.string(), at: z.number() }),
  z.object({ type: z.literal('reset'), seq: z.number().int().positive(), at: z.number() }),
  z.object({
    type: z.literal('done'),
    seq: z.number().int().positive(),
    status: z.enum(['COMPLETE', 'FAILED', 'CANCELLED']),
    at: z.number(),
  }),
]);
export type AnswerStreamEvent = z.infer<typeof answerEventSchema>;
type Unstamped = AnswerStreamEvent extends infer E ? (E extends AnswerStreamEvent ? Omit<E, 'seq' | 'at'> : never) : never;

export const answerKey = (messageId: string) => `answer:${messageId}:events`;
const seqKey = (messageId: string) => `answer:${messageId}:seq`;

/** Publishes an answer's events: appends to its stream and announces on its channel, atomically. */
export function createAnswerPublisher(redis: Redis) {
  return {
    async publish(messageId: string, event: Unstamped): Promise<AnswerStreamEvent> {
      const seq = await redis.incr(seqKey(messageId));
      const stamped = { ...event, seq, at: Date.now() } as AnswerStreamEvent;
      const body = JSON.stringify(stamped);
      await redis
        .multi()
        .xadd(answerKey(messageId), '*', 'e', body)
        .expire(answerKey(messageId), ANSWER_STREAM_TTL_S)
        .expire(seqKey(messageId), ANSWER_STREAM_TTL_S)
        .publish(answerKey(messageId), body)
        .exec();
      return stamped;
    },
  };
}
export type AnswerPublisher = ReturnType<typeof createAnswerPublisher>;

export function parseAnswerEvent(raw: string): AnswerStreamEvent | undefined {
  try {
    const parsed = answerEventSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Every event of an answer so far, in order (empty once the stream has expired). */
export async function readAnswerHistory(redis: Redis, messageId: string): Promise<AnswerStreamEvent[]> {
  const entries = await redis.xrange(answerKey(messageId), '-', '+');
  const events: AnswerStreamEvent[] = [];
  for (const [, fields] of entries) {
    const event = parseAnswerEvent(fields[1] ?? '');
    if (event) events.push(event);
  }
  return events;
}

/** The text the events spell out: deltas appended, a reset starting again. */
export function textOf(events: readonly AnswerStreamEvent[]): string {
  let text = '';
  for (const e of events) {
    if (e.type === 'delta') text += e.text;
    else if (e.type === 'reset') text = '';
  }
  return text;
}

/**
 * Live events of many answers over one subscriber connection (a router has one
 * for all its subscribers). `listen` resolves once the channel subscription is
 * in place, so history read afterwards cannot miss an event.
 */
export function createAnswerHub(subscriber: Redis) {
  const listeners = new Map<string, Set<(event: AnswerStreamEvent) => void>>();
  subscriber.on('message', (channel: string, raw: string) => {
    const set = listeners.get(channel);
    if (!set) return;
    const event = parseAnswerEvent(raw);
    if (event) for (const listener of set) listener(event);
  });
  return {
    async listen(messageId: string, listener: (event: AnswerStreamEvent) => void): Promise<() => void> {
      const channel = answerKey(messageId);
      let set = listeners.get(channel);
      if (!set) {
        set = new Set();
        listeners.set(channel, set);
      }
      set.add(listener);
      await subscriber.subscribe(channel);
      return () => {
        const current = listeners.get(channel);
        if (!current) return;
        current.delete(listener);
        if (current.size === 0) {
          listeners.delete(channel);
          void subscriber.unsubscribe(channel).catch(() => undefined);
        }
      };
    },
    /** Channels with at least one listener (for metrics and tests). */
    size: () => listeners.size,
    close: () => subscriber.quit().then(() => undefined),
  };
}
export type AnswerHub = ReturnType<typeof createAnswerHub>;

/** Cancellation requests travel on one channel every answer worker listens to. */
export const ANSWER_CONTROL_CHANNEL = 'answer:control';
export const answerControlSchema = z.object({ type: z.literal('cancel'), messageId: z.string().uuid() });
