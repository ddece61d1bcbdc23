/**
 * Runs the offline generator in a worker thread (./offline-thread.ts): progress
 * comes back as messages, an abort or the time limit terminates the thread.
 */
import { Worker } from 'node:worker_threads';
import type { GenerateResult, GenerationStats } from '@lib/exam/index.js';
import type { ThreadInput, ThreadMessage } from './offline-thread.js';

/** The thread runs TypeScript as this process does: through tsx's loader, registered first. */
const TSX_API = import.meta.resolve('tsx/esm/api');
const THREAD = new URL('./offline-thread.ts', import.meta.url).href;
const BOOT = `import(${JSON.stringify(TSX_API)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(THREAD)}); })`;

export class GenerationTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the offline generator took longer than ${timeoutMs} ms`);
  }
}

export interface OfflineRun {
  result: GenerateResult;
  stats?: GenerationStats;
}

export function runOffline(
  input: ThreadInput,
  opts: { onProgress?: (made: number, target: number) => void; signal?: AbortSignal; timeoutMs: number; memoryMb?: number },
): Promise<OfflineRun> {
  opts.signal?.throwIfAborted();
  const worker = new Worker(BOOT, {
    eval: true,
    workerData: input,
    resourceLimits: { maxOldGenerationSizeMb: opts.memoryMb ?? 1024 },
    stdout: false,
    stderr: false,
  });
  return new Promise<OfflineRun>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      fn();
      void worker.terminate();
    };
    const timer = setTimeout(() => finish(() => reject(new GenerationTimeout(opts.timeoutMs))), opts.timeoutMs);
    const onAbort = () => finish(() => reject(opts.signal!.reason));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: ThreadMessage) => {
      if (m.type === 'progress') opts.onProgress?.(m.made, m.target);
      else finish(() => resolve({ result: m.result, ...(m.stats ? { stats: m.stats } : {}) }));
    });
    worker.on('error', (err) => finish(() => reject(err)));
    worker.on('exit', (code) => finish(() => reject(new Error(`the generator thread exited with code ${code}`))));
  });
}
