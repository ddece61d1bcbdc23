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
 * status; read it from the database, or from the row it carries). The stream expires an hour after its
 * last event: by then the message is final and its text is in the database.
 *
 * Besides its events the stream holds, under a field of its own (`row`, not `e`), the answer's
 * row as the chat subgraph created it: a router starting a subscription for the person who asked
 * shapes its SNAPSHOT from that row instead of reading the message through the gateway. It is not
 * an event (no sequence number, never announced); readers of events skip it.
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
    /**
     * The final Message row as the statement that made it final returned it (JSON), when the
     * publisher has it (the worker does): routers shape DONE from it instead of reading it again.
     */
    message: z.record(z.string(), z.unknown()).optional(),
  }),
]);
export type AnswerStreamEvent = z.infer<typeof answerEventSchema>;
type Unstamped = AnswerStreamEvent extends infer E ? (E extends AnswerStreamEvent ? Omit<E, 'seq' | 'at'> : never) : never;

export const answerKey = (messageId: string) => `answer:${messageId}:events`;
const seqKey = (messageId: string) => `answer:${messageId}:seq`;
const attemptKey = (messageId: string) => `answer:${messageId}:attempt`;

/**
 * One event, atomically: the attempt check, the next sequence number, the stream
 * entry, the expiries and the announcement. Stream order is sequence order, and a
 * sequence number is never taken without its event. An event of an older attempt
 * than the latest (a worker still writing after its job was taken over) is refused:
 * the script returns 0 and nothing is written.
 *   KEYS: seq, stream, attempt   ARGV: attempt ('' = not tied to one), ttl, body without its "{"
 */
const PUBLISH_SCRIPT = `
local attempt = tonumber(ARGV[1])
if attempt then
  local current = tonumber(redis.call('GET', KEYS[3]) or '0')
  if attempt < current then return 0 end
  if attempt > current then redis.call('SET', KEYS[3], attempt, 'EX', ARGV[2]) end
end
local seq = redis.call('INCR', KEYS[1])
local body = '{"seq":' .. seq .. ',' .. ARGV[3]
redis.call('XADD', KEYS[2], '*', 'e', body)
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', KEYS[2], body)
return seq
`;

type PublishCommand = (seq: string, stream: string, attempt: string, attemptArg: string, ttl: string, body: string) => Promise<number>;

/** Publishes an answer's events: appends to its stream and announces on its channel, atomically. */
export function createAnswerPublisher(redis: Redis) {
  // EVALSHA (ioredis loads the script again on NOSCRIPT): the script's text is not sent, nor hashed by Redis, with every piece.
  if (!('answerPublish' in redis)) redis.defineCommand('answerPublish', { numberOfKeys: 3, lua: PUBLISH_SCRIPT });
  const publishCommand = (redis as unknown as { answerPublish: PublishCommand }).answerPublish.bind(redis);
  return {
    /**
     * `attempt` ties the event to one run of the answer (the message's attempt count): once a
     * later attempt has published, the earlier one's events are refused and this returns null.
     * Events published by others (a cancellation, a sweeper) pass no attempt.
     */
    async publish(messageId: string, event: Unstamped, attempt?: number): Promise<AnswerStreamEvent | null> {
      const at = Date.now();
      const rest = JSON.stringify({ ...event, at }).slice(1);
      const seq = await publishCommand(
        seqKey(messageId),
        answerKey(messageId),
        attemptKey(messageId),
        attempt === undefined ? '' : String(attempt),
        String(ANSWER_STREAM_TTL_S),
        rest,
      );
      return seq === 0 ? null : ({ ...event, seq, at } as AnswerStreamEvent);
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

const EVENT_FIELD = 'e';
const ROW_FIELD = 'row';

/**
 * Records the answer's row, as just created, at the head of its stream (see above), with the
 * stream's expiry, atomically. Only the chat subgraph writes it, as it creates the message.
 */
export async function recordAnswerRow(redis: Redis, messageId: string, row: object): Promise<void> {
  const key = answerKey(messageId);
  const replies = await redis.multi().xadd(key, '*', ROW_FIELD, JSON.stringify(row)).expire(key, ANSWER_STREAM_TTL_S).exec();
  const failed = replies?.find(([err]) => err)?.[0];
  if (failed) throw failed;
}

export interface AnswerStart {
  /** Every event so far, in order. */
  events: AnswerStreamEvent[];
  /** The row recorded as the answer was created (JSON: dates as strings), if it was. */
  row: Record<string, unknown> | undefined;
}

/** Every event of an answer so far, in order, and its recorded row (empty once the stream has expired). */
export async function readAnswerStart(redis: Redis, messageId: string): Promise<AnswerStart> {
  const entries = await redis.xrange(answerKey(messageId), '-', '+');
  const events: AnswerStreamEvent[] = [];
  let row: Record<string, unknown> | undefined;
  for (const [, fields] of entries) {
    if (fields[0] === EVENT_FIELD) {
      const event = parseAnswerEvent(fields[1] ?? '');
      if (event) events.push(event);
    } else if (fields[0] === ROW_FIELD && row === undefined) {
      try {
        const parsed: unknown = JSON.parse(fields[1] ?? '');
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) row = parsed as Record<string, unknown>;
      } catch {
        // not a row: ignored, the message is read through the gateway
      }
    }
  }
  return { events, row };
}

/** Every event of an answer so far, in order (empty once the stream has expired). */
export async function readAnswerHistory(redis: Redis, messageId: string): Promise<AnswerStreamEvent[]> {
  return (await readAnswerStart(redis, messageId)).events;
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
  const reconnectListeners = new Set<() => void>();
  let connectedOnce = subscriber.status === 'ready';
  subscriber.on('ready', () => {
    if (connectedOnce) for (const listener of reconnectListeners) listener();
    connectedOnce = true;
  });
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
      const unlisten = () => {
        const current = listeners.get(channel);
        if (!current) return;
        current.delete(listener);
        if (current.size === 0) {
          listeners.delete(channel);
          void subscriber.unsubscribe(channel).catch(() => undefined);
        }
      };
      try {
        await subscriber.subscribe(channel);
      } catch (err) {
        unlisten();
        throw err;
      }
      return unlisten;
    },
    /**
     * Called after the subscriber connection came back (ioredis subscribes again by itself):
     * events published while it was away were missed, so listeners should re-read the history.
     */
    onReconnect(listener: () => void): () => void {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
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
