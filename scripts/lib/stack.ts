import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export const SUBGRAPHS = ['rag', 'chat', 'exam', 'tasks'] as const;
export type SubgraphName = (typeof SUBGRAPHS)[number];

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  url: string;
  /**
   * Base URL of its /metrics and /ready with details: the router's internal port (OPS_PORT), or
   * the service's own port (subgraphs, workers), from its "ready" line.
   */
  opsUrl: string;
  /** Every stdout/stderr line so far (parsed when JSON). */
  lines: string[];
  exited: Promise<number | null>;
}

export interface StackOptions {
  /** Environment shared by every process (DATABASE_URL, REDIS_URL, LOG_LEVEL, ...). */
  env: Record<string, string>;
  /** Extra environment per service name ("router", "rag", ...). */
  perService?: Partial<Record<string, Record<string, string>>>;
  ports?: Partial<Record<string, number>>;
  /** Streams each line to this callback as it arrives (the dev script prints them). */
  onLine?: (service: string, line: string) => void;
  startTimeoutMs?: number;
  /** Worker processes to start (named worker-1, worker-2, ...); default 1. */
  workers?: number;
  /**
   * Pass the user's own settings (EMBEDDINGS_*, LLM_*, VECTOR_STORE, QDRANT_*, RATE_LIMIT_*, ...)
   * from this process's environment to the services: what `npm run dev` does. Test and benchmark
   * stacks leave it off, so a developer's exported variables never change what they measure.
   */
  inheritSettings?: boolean;
}

export interface Stack {
  routerUrl: string;
  services: Record<string, ServiceProcess>;
  stop(): Promise<void>;
}

/** The project's own settings, as opposed to the machine's (PATH, HOME, NODE_OPTIONS, ...). */
const PROJECT_VARIABLES =
  /^(VECTOR_STORE|QDRANT_|EMBEDDINGS_|LLM_|RATE_LIMIT_|QUERY_MAX_|JWT_|SUBGRAPH_|INTERNAL_JWT_|DATABASE_URL|REDIS_URL|CACHE_REDIS_URL|BLOB_DIR|PORT|OPS_PORT|HOST)/;

/**
 * A service's environment: the parent's (with or without the project's settings, see
 * `inheritSettings`), then what the stack sets for it, which always wins.
 */
export function serviceEnvironment(
  parent: NodeJS.ProcessEnv,
  own: Record<string, string>,
  inheritSettings = false,
): Record<string, string> {
  const inherited = Object.entries(parent).filter(
    (e): e is [string, string] => e[1] !== undefined && (inheritSettings || !PROJECT_VARIABLES.test(e[0])),
  );
  return { ...Object.fromEntries(inherited), ...own };
}

const READY_MESSAGES = new Set(['subgraph ready', 'router ready', 'worker ready']);

/** Lines kept per service for tests to read; older ones are dropped past this. */
const MAX_LINES = 20_000;

const ENTRY: Record<string, string> = {
  router: 'router/src/index.ts',
  rag: 'subgraphs/rag/src/index.ts',
  chat: 'subgraphs/chat/src/index.ts',
  exam: 'subgraphs/exam/src/index.ts',
  tasks: 'subgraphs/tasks/src/index.ts',
  'bare-gateway': 'scripts/lib/bare-gateway.ts',
  'hive-gateway': 'scripts/lib/hive-gateway.mjs',
  worker: 'workers/src/index.ts',
};

/**
 * Starts one service as its own process (node + tsx) and resolves when it logs
 * its URL. PORT 0 lets the OS pick; the URL is read from the "ready" line.
 */
export function startService(
  name: string,
  env: Record<string, string>,
  opts: Pick<StackOptions, 'onLine' | 'startTimeoutMs' | 'inheritSettings'> = {},
): Promise<ServiceProcess> {
  const entry = ENTRY[name.replace(/-\d+$/, '')];
  if (!entry) throw new Error(`unknown service ${name}`);
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: serviceEnvironment(process.env, env, opts.inheritSettings),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start in time:\n${lines.slice(-20).join('\n')}`));
    }, opts.startTimeoutMs ?? 30_000);
    let ready = false;
    const onLine = (line: string) => {
      lines.push(line);
      if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES / 2);
      opts.onLine?.(name, line);
      if (ready || !line.startsWith('{')) return;
      try {
        const entryLog = JSON.parse(line) as { msg?: string; url?: string; opsUrl?: string };
        if (READY_MESSAGES.has(entryLog.msg ?? '') && entryLog.url) {
          clearTimeout(timer);
          ready = true;
          const opsUrl = entryLog.opsUrl ?? entryLog.url.replace(/\/graphql$/, '');
          resolve({ name, child, url: entryLog.url, opsUrl, lines, exited });
        }
      } catch {}
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready:\n${lines.slice(-20).join('\n')}`));
    });
  });
}

/** Stops a service with SIGTERM (its graceful shutdown) and waits; SIGKILL after the grace period. */
export async function stopService(service: ServiceProcess, graceMs = 20_000): Promise<number | null> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return service.child.exitCode;
  service.child.kill('SIGTERM');
  const timer = setTimeout(() => service.child.kill('SIGKILL'), graceMs);
  const code = await service.exited;
  clearTimeout(timer);
  return code;
}

/** Starts services in parallel; if any fails, stops the ones that started and rethrows. */
async function startAll(starting: Promise<ServiceProcess>[]): Promise<ServiceProcess[]> {
  const settled = await Promise.allSettled(starting);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  if (failed) {
    await Promise.all(started.map((s) => stopService(s)));
    throw failed.reason;
  }
  return started;
}

/** The four subgraphs and the workers, then the router pointed at the subgraphs. */
export async function startStack(opts: StackOptions): Promise<Stack> {
  const services: Record<string, ServiceProcess> = {};
  const stop = async () => {
    await Promise.all(
      Object.values(services)
        .filter((s) => s.name === 'router')
        .map((s) => stopService(s)),
    );
    await Promise.all(
      Object.values(services)
        .filter((s) => s.name !== 'router')
        .map((s) => stopService(s)),
    );
  };
  try {
    const subgraphs = await startAll(
      SUBGRAPHS.map((name) => startService(name, { ...opts.env, PORT: String(opts.ports?.[name] ?? 0), ...opts.perService?.[name] }, opts)),
    );
    for (const s of subgraphs) services[s.name] = s;
    const workers = await startAll(
      Array.from({ length: opts.workers ?? 1 }, (_, i) =>
        startService(
          `worker-${i + 1}`,
          { ...opts.env, PORT: String(opts.ports?.[`worker-${i + 1}`] ?? 0), ...opts.perService?.['worker'] },
          opts,
        ),
      ),
    );
    for (const w of workers) services[w.name] = w;
    const urls = Object.fromEntries(subgraphs.map((s) => [`SUBGRAPH_${s.name.toUpperCase()}_URL`, s.url]));
    // The router's internal port (/metrics, /ready with details): fixed when given as `router-ops`,
    // its default (9400) beside a fixed router port (npm run dev), else any free one.
    const opsPort = opts.ports?.['router-ops'] ?? (opts.ports?.['router'] === undefined ? 0 : undefined);
    services['router'] = await startService(
      'router',
      {
        ...opts.env,
        ...urls,
        PORT: String(opts.ports?.['router'] ?? 0),
        ...(opsPort === undefined ? {} : { OPS_PORT: String(opsPort) }),
        ...opts.perService?.['router'],
      },
      opts,
    );
    return { routerUrl: services['router'].url, services, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
