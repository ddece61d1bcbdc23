/**
 * Prometheus as a plain local process (Debian's `prometheus`), for `npm run dev` and the
 * monitoring test: the scrape jobs, relabelling and rules of monitoring/prometheus.yml, with
 * its service discovery swapped for file-based discovery of local processes (host:port), and
 * its own data under `dir`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { freePort } from './edge.js';

export const MONITORING_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../monitoring');

export function findPrometheus(): string | null {
  for (const p of ['/usr/bin/prometheus', '/usr/local/bin/prometheus', '/usr/sbin/prometheus']) if (existsSync(p)) return p;
  return null;
}

export interface PrometheusOptions {
  /** Configuration, target files and the TSDB. */
  dir: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** host:port of each scrape job's processes, by job name (router, rag, ..., worker); other jobs are left out. */
  targets: Record<string, string[]>;
  scrapeIntervalS?: number;
  evaluationIntervalS?: number;
  startTimeoutMs?: number;
}

interface ScrapeConfig {
  job_name: string;
  dns_sd_configs?: unknown;
  static_configs?: unknown;
  file_sd_configs?: unknown;
  [k: string]: unknown;
}

/** monitoring/prometheus.yml for local processes: the jobs in `targets` only, discovered from files in `dir/targets`. */
export function localPrometheusConfig(
  opts: Pick<PrometheusOptions, 'dir' | 'targets' | 'scrapeIntervalS' | 'evaluationIntervalS'>,
): string {
  const base = parse(readFileSync(join(MONITORING_DIR, 'prometheus.yml'), 'utf8')) as {
    global: Record<string, unknown>;
    rule_files: string[];
    scrape_configs: ScrapeConfig[];
  };
  const interval = `${opts.scrapeIntervalS ?? 15}s`;
  const config = {
    global: {
      ...base.global,
      scrape_interval: interval,
      scrape_timeout: `${Math.min(10, opts.scrapeIntervalS ?? 15)}s`,
      evaluation_interval: `${opts.evaluationIntervalS ?? opts.scrapeIntervalS ?? 15}s`,
    },
    rule_files: readdirSync(join(MONITORING_DIR, 'rules'))
      .filter((f) => f.endsWith('.yml'))
      .map((f) => join(MONITORING_DIR, 'rules', f)),
    scrape_configs: base.scrape_configs
      .filter((job) => opts.targets[job.job_name] !== undefined)
      .map(({ dns_sd_configs: _d, static_configs: _s, ...job }) => ({
        ...job,
        file_sd_configs: [{ files: [join(resolve(opts.dir), 'targets', `${job.job_name}.json`)], refresh_interval: '5s' }],
      })),
  };
  return stringify(config);
}

/** Writes one job's target file (Prometheus re-reads it by itself). */
export function writeTargets(dir: string, job: string, targets: string[]): void {
  mkdirSync(join(dir, 'targets'), { recursive: true });
  writeFileSync(join(dir, 'targets', `${job}.json`), `${JSON.stringify([{ targets }])}\n`);
}

export interface LocalPrometheus {
  url: string;
  port: number;
  /** An instant query through the HTTP API: the result vector (empty when nothing matches). */
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Every metric name Prometheus holds. */
  metricNames(): Promise<string[]>;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export async function startPrometheus(opts: PrometheusOptions): Promise<LocalPrometheus> {
  const exe = findPrometheus();
  if (!exe) throw new Error('prometheus not found: apt-get install prometheus (scripts/infra.ts installs it as root)');
  const dir = resolve(opts.dir);
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port || (await freePort(host));
  mkdirSync(join(dir, 'data'), { recursive: true });
  for (const [job, targets] of Object.entries(opts.targets)) writeTargets(dir, job, targets);
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, localPrometheusConfig({ ...opts, dir }));

  const child: ChildProcess = spawn(
    exe,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${host}:${port}`,
      '--storage.tsdb.retention.time=2d',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8000);
  });
  let gone = false;
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      gone = true;
      r(code);
    }),
  );
  const url = `http://${host}:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  for (;;) {
    if (gone) throw new Error(`prometheus exited at start:\n${stderr}`);
    try {
      if ((await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok) break;
    } catch {}
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not become ready:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  return {
    url,
    port,
    query: async (expr) =>
      (
        await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
          `/api/v1/query?query=${encodeURIComponent(expr)}`,
        )
      ).result,
    metricNames: () => api<string[]>('/api/v1/label/__name__/values'),
    exited,
    stop,
  };
}
