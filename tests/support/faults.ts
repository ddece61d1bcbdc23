/**
 * The faults tier's PostgreSQL, PgBouncer and Redis (the `faults` profile of scripts/infra.ts,
 * started by the tier's Jest global setup): its tests kill, stall and restart them, so nothing
 * else ever uses them.
 */
import { infraEnv, infraPid, infraUp, type ServiceName } from '../../scripts/infra.js';

export function faultsInfra() {
  const env = infraEnv('faults');
  return { DATABASE_URL: env.DATABASE_URL, DIRECT_DATABASE_URL: env.DIRECT_DATABASE_URL, REDIS_URL: env.REDIS_URL };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends `signal` to one of the profile's services and, unless it only stalls it (SIGSTOP),
 * waits until the process is gone. SIGINT to PostgreSQL is its fast shutdown; SIGTERM to
 * PgBouncer its immediate one; SIGKILL a crash.
 */
export async function signalService(service: ServiceName, signal: NodeJS.Signals, timeoutMs = 30_000): Promise<number> {
  const pid = infraPid('faults', service);
  if (pid === null) throw new Error(`${service} of the faults profile is not running`);
  process.kill(pid, signal);
  if (signal === 'SIGSTOP' || signal === 'SIGCONT') return pid;
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`${service} (pid ${pid}) did not exit after ${signal}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return pid;
}

/** Starts whatever of the profile is not running (the project's own `infra up`), from its data on disk. */
export async function restartInfra(): Promise<void> {
  await infraUp('faults');
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a client may see of a server: nothing that names our code, files, hosts or libraries. */
export const INTERNALS =
  /prisma|\/work\/|node_modules|ECONNREFUSED|ECONNRESET|127\.0\.0\.1|localhost|stack|pgbouncer|postgres|ioredis|at [A-Za-z.]+ \(/i;
