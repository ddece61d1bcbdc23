import { Redis } from 'ioredis';
import type { ConnectionOptions } from 'bullmq';
import type { PrismaClient } from '../db/client.js';
import { createJobQueues, type JobQueues } from '../jobs/queues.js';
import type { Logger } from '../logger.js';
import { bullConnection, redisOptionsFromUrl } from '../redis.js';
import { createTaskEventPublisher, type TaskEventPublisher } from './events.js';
import { createTaskStore, type TaskStore } from './store.js';

export interface TaskInfra {
  connection: ConnectionOptions;
  redis: Redis;
  queues: JobQueues;
  publisher: TaskEventPublisher;
  tasks: TaskStore;
  close(): Promise<void>;
}

/**
 * What every process that starts or changes tasks needs: Redis, the queues, the event publisher, the task store.
 *
 * `failFast` (subgraphs, which answer requests): while Redis is out of reach a command fails after
 * one reconnection attempt instead of waiting for Redis, so a request is answered SERVICE_UNAVAILABLE
 * at once (or, for an enqueue after the commit, left to the reconciler) rather than hanging. Workers
 * wait for Redis instead (BullMQ's workers require it).
 */
export function createTaskInfra(redisUrl: string, prisma: PrismaClient, log: Logger, opts: { failFast?: boolean } = {}): TaskInfra {
  const retries = opts.failFast ? 1 : null;
  const connection: ConnectionOptions = opts.failFast
    ? (redisOptionsFromUrl(redisUrl, { maxRetriesPerRequest: retries }) as ConnectionOptions)
    : bullConnection(redisUrl);
  const redis = new Redis(redisOptionsFromUrl(redisUrl, { maxRetriesPerRequest: retries }));
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  const queues = createJobQueues(connection, (err) => log.error({ err }, 'queue error'));
  const publisher = createTaskEventPublisher(connection);
  return {
    connection,
    redis,
    queues,
    publisher,
    tasks: createTaskStore(prisma, publisher),
    close: async () => {
      await Promise.all([queues.close(), publisher.close()]);
      await redis.quit();
    },
  };
}
