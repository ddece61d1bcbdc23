import { QueueEvents, QueueEventsProducer, type ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';

/**
 * Task status changes travel as custom events on one BullMQ event stream
 * (`bull:task-events:events`). Every reader (each router replica, each worker)
 * sees every event. The event only says *that* a task changed; readers fetch
 * the task's current state, so a late or repeated event is harmless.
 */
export const TASK_EVENTS = 'task-events';
const EVENT_NAME = 'task.updated';
const MAX_EVENTS = 10_000;

export const taskEventSchema = z.object({
  taskId: z.string(),
  ownerId: z.string(),
  courseId: z.string(),
  status: z.enum(['ACCEPTED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED']),
  progress: z.coerce.number(),
  /** Milliseconds since the epoch when it was published (for latency figures). */
  at: z.coerce.number(),
});
export type TaskEvent = z.infer<typeof taskEventSchema>;

export interface TaskEventPublisher {
  publish(event: Omit<TaskEvent, 'at'>): Promise<void>;
  close(): Promise<void>;
}

export function createTaskEventPublisher(connection: ConnectionOptions): TaskEventPublisher {
  const producer = new QueueEventsProducer(TASK_EVENTS, { connection });
  return {
    publish: (event) =>
      producer.publishEvent({ eventName: EVENT_NAME, ...event, progress: String(event.progress), at: String(Date.now()) }, MAX_EVENTS),
    close: () => producer.close(),
  };
}

export interface TaskEventStream {
  /** `id` is the event's position in the stream: the same event has the same id in every reader. */
  on(listener: (event: TaskEvent, id: string) => void): () => void;
  close(): Promise<void>;
}

/**
 * Reads the event stream from the position it had when this was called, not
 * from '$' at the first blocking read: BullMQ's default would drop events
 * published in between.
 */
export async function createTaskEventStream(connection: ConnectionOptions, onError: (err: Error) => void): Promise<TaskEventStream> {
  const probe = new Redis({ ...(connection as RedisOptions), lazyConnect: false, maxRetriesPerRequest: 3 });
  probe.on('error', () => {}); // its failure surfaces from xrevrange below
  let last: string;
  try {
    last = (await probe.xrevrange(`bull:${TASK_EVENTS}:events`, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
  } finally {
    probe.disconnect();
  }
  const events = new QueueEvents(TASK_EVENTS, { connection, lastEventId: last, blockingTimeout: 5000 });
  events.on('error', onError);
  const listeners = new Set<(event: TaskEvent, id: string) => void>();
  events.on(
    EVENT_NAME as 'error',
    ((args: unknown, id: string) => {
      const parsed = taskEventSchema.safeParse(args);
      if (!parsed.success) return onError(new Error(`malformed task event: ${parsed.error.message}`));
      for (const listener of listeners) listener(parsed.data, id);
    }) as never,
  );
  await events.waitUntilReady();
  return {
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: () => events.close(),
  };
}
