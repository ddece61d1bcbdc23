import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** CPU time (user + system) of a process so far, in ms, from /proc; NaN when it is gone. */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** The machine's busy CPU time and every process's, in ms. */
export interface CpuSnapshot {
  at: number;
  busy: number;
  processes: Map<number, { comm: string; ppid: number; ms: number }>;
}

export function cpuSnapshot(): CpuSnapshot {
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
  const busy = ticks.slice(0, 8).reduce((s, t, i) => (i === 3 || i === 4 ? s : s + t), 0) * 10;
  const processes = new Map<number, { comm: string; ppid: number; ms: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      processes.set(Number(entry), {
        comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(') ')),
        ppid: Number(fields[1]),
        ms: (Number(fields[11]) + Number(fields[12])) * 10,
      });
    } catch {} // gone meanwhile
  }
  return { at: performance.timeOrigin + performance.now(), busy, processes };
}

/** The test profile's PostgreSQL postmaster, PgBouncer and Redis (their pid files under .data/test). */
function infraPids() {
  const root = resolve(fileURLToPath(import.meta.url), '../../../.data/test');
  const pid = (file: string) => {
    try {
      return Number(readFileSync(join(root, file), 'utf8').split('\n')[0]!.trim());
    } catch {
      return -1;
    }
  };
  return { postgres: pid('pg/data/postmaster.pid'), pgbouncer: pid('pg/pgbouncer.pid'), redis: pid('redis/redis.pid') };
}

/**
 * Where the CPU went between two snapshots: the named processes (pid -> name), this run's PostgreSQL
 * (its postmaster and the backends it forked), PgBouncer and Redis, and everything else. With `per`,
 * also per unit of work (an answer, a document) for the project's own processes: `others` names the
 * processes that are not the project's (the bench's clients, a fake model).
 */
export function cpuReport(
  before: CpuSnapshot,
  after: CpuSnapshot,
  names: Map<number, string>,
  per?: { count: number; unit: string; others?: string[] },
) {
  const seconds = (after.at - before.at) / 1000;
  const groups = new Map<string, number>();
  let known = 0;
  // By pid: the machine may run other people's databases, which are theirs to count.
  const infra = infraPids();
  for (const [pid, p] of after.processes) {
    const name =
      names.get(pid) ??
      (pid === infra.postgres || (p.ppid === infra.postgres && p.comm === 'postgres')
        ? 'postgres'
        : pid === infra.pgbouncer
          ? 'pgbouncer'
          : pid === infra.redis
            ? 'redis'
            : '');
    if (!name) continue;
    const used = p.ms - (before.processes.get(pid)?.ms ?? 0);
    groups.set(name, (groups.get(name) ?? 0) + used);
    known += used;
  }
  const busy = after.busy - before.busy;
  groups.set('other processes', Math.max(0, busy - known));
  const parts = [...groups].map(([name, used]) => `${name} ${(used / 1000).toFixed(2)}`).join(', ');
  const line =
    `  CPU over ${seconds.toFixed(1)} s: machine busy ${(busy / 1000).toFixed(2)} s of ${(seconds * availableParallelism()).toFixed(2)} ` +
    `(${((100 * busy) / (seconds * 1000 * availableParallelism())).toFixed(0)}%); by process, s: ${parts}`;
  if (!per?.count) return line;
  const others = new Set(['other processes', ...(per.others ?? [])]);
  const ours = [...groups].filter(([name, used]) => !others.has(name) && used / per.count >= 0.05);
  const total = ours.reduce((sum, [, used]) => sum + used, 0);
  return (
    `${line}\n  CPU per ${per.unit} (${per.count}), ms: ${ours.map(([name, used]) => `${name} ${(used / per.count).toFixed(1)}`).join(', ')}` +
    `; the project's processes together ${(total / per.count).toFixed(1)}`
  );
}
