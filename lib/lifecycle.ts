import type { Logger } from './logger.js';

export interface ShutdownStep {
  name: string;
  run: () => Promise<unknown>;
}

export interface Lifecycle {
  /** True from the first shutdown signal on: readiness must fail. */
  readonly draining: boolean;
  /** Starts the ordered shutdown (idempotent): what a signal handler calls. */
  shutdown(reason: string): Promise<void>;
}

export interface LifecycleOptions {
  log: Logger;
  /** How long readiness fails while the service still serves, so load balancers stop routing to it. */
  drainDelayMs: number;
  /** Upper bound for the whole shutdown; past it the process exits with code 1. */
  timeoutMs: number;
  steps: ShutdownStep[];
  exit?: (code: number) => void;
}

/**
 * Ordered, idempotent, bounded shutdown: readiness fails first, then each step
 * runs in order (stop accepting and drain, close workers, close clients).
 */
export function createLifecycle({ log, drainDelayMs, timeoutMs, steps, exit = (c) => process.exit(c) }: LifecycleOptions): Lifecycle {
  let draining = false;
  let done: Promise<void> | undefined;

  const run = async (reason: string) => {
    draining = true;
    log.info({ reason, drainDelayMs, timeoutMs }, 'shutdown started');
    const timer = setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown timed out, exiting');
      exit(1);
    }, timeoutMs);
    timer.unref();
    let code = 0;
    if (drainDelayMs > 0) await new Promise((r) => setTimeout(r, drainDelayMs));
    // `n`: the step's place, for readers of logs that may arrive out of order (a full pipe).
    for (const [i, step] of steps.entries()) {
      const started = Date.now();
      try {
        await step.run();
        log.info({ step: step.name, n: i + 1, ms: Date.now() - started }, 'shutdown step done');
      } catch (err) {
        code = 1;
        log.error({ step: step.name, n: i + 1, err }, 'shutdown step failed');
      }
    }
    clearTimeout(timer);
    log.info({ code }, 'shutdown complete');
    exit(code);
  };

  const lifecycle: Lifecycle = {
    get draining() {
      return draining;
    },
    shutdown(reason) {
      done ??= run(reason);
      return done;
    },
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => void lifecycle.shutdown(signal));
  }
  return lifecycle;
}

/** The last line of every entrypoint: log the failure and exit non-zero. */
export function runMain(main: () => Promise<unknown>, log?: Pick<Logger, 'fatal'>) {
  main().catch((err: unknown) => {
    if (log) log.fatal({ err }, 'start-up failed');
    else process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
