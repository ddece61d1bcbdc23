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

/** What every process that starts or changes tasks needs: Redis, the queues, the event publisher, the task store. */
export function createTaskInfra(redisUrl: string, prisma: PrismaClient, log: Logger): TaskInfra {
  const connection = bullConnection(redisUrl);
  const redis = new Redis(redisOptionsFromUrl(redisUrl, { maxRetriesPerRequest: null }));
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
