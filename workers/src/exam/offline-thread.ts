/**
 * Worker-thread entry of the offline generator: lib/exam's generateOffline is
 * synchronous and, on a large course, busy for seconds; here it cannot stall
 * the worker's event loop (job lock renewals, progress writes), and a
 * cancellation terminates it outright.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { generateOffline, generationStats, type GenerateOptions } from '@lib/exam/index.js';

export type ThreadInput = Omit<GenerateOptions, 'onProgress'> & { stats?: boolean };
export type ThreadMessage =
  | { type: 'progress'; made: number; target: number }
  | { type: 'done'; result: ReturnType<typeof generateOffline>; stats?: ReturnType<typeof generationStats> };

const input = workerData as ThreadInput;
const post = (m: ThreadMessage) => parentPort!.postMessage(m);
const result = generateOffline({ ...input, onProgress: (made, target) => post({ type: 'progress', made, target }) });
post({ type: 'done', result, ...(input.stats ? { stats: generationStats(input) } : {}) });
