import type { Job } from 'bullmq';
import type { JobName, JobPayload } from '@lib/jobs/contracts.js';
import type { Logger } from '@lib/logger.js';

export interface HandlerContext {
  job: Job;
  log: Logger;
  /** Aborted when the task is cancelled or the worker is forced to stop. */
  signal: AbortSignal;
}

export type Handler<N extends JobName> = (payload: JobPayload<N>, ctx: HandlerContext) => Promise<string>;

/** Exactly one handler per job name: the type demands every name, start-up checks it again. */
export type Handlers = { [N in JobName]: Handler<N> };
