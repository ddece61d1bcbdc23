import express, { type Express } from 'express';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Lifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';

export interface ProbeOptions {
  lifecycle: Pick<Lifecycle, 'draining'>;
  registry: Registry;
  log: Logger;
  /** Every dependency the service needs to serve; each returns normally when reachable. */
  checks: Record<string, () => Promise<unknown>>;
  /**
   * More to show in the detailed `/ready` that does not decide readiness (the router's view of its
   * subgraphs: one being down does not stop it answering the rest).
   */
  info?: () => Record<string, unknown>;
}

export interface ProbeSet {
  /**
   * `/ready` names each check and why it failed (dependency error messages): for an internal
   * port. Without it, `/ready` answers only its status.
   */
  details?: boolean;
  /** Serves `/metrics` (Prometheus). */
  metrics?: boolean;
}

/**
 * `/health` (alive), `/ready` (dependencies reachable, not draining) and `/metrics`. By default all
 * three with details (a service on a private network); a public port takes `{ details: false,
 * metrics: false }` and leaves the rest to `startOpsServer`.
 */
export function mountProbes(app: Express, { lifecycle, registry, log, checks, info }: ProbeOptions, set: ProbeSet = {}) {
  const { details = true, metrics = true } = set;
  // Without details the port is public: checks run at most once a second, whoever asks.
  let recent: { at: number; result: Promise<{ ok: boolean; results: Record<string, string> }> } | undefined;
  const runChecks = async () => {
    const results: Record<string, string> = {};
    let ok = true;
    await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), 2000);
          results[name] = 'ok';
        } catch (err) {
          ok = false;
          results[name] = (err as Error).message;
          log.warn({ check: name, err }, 'readiness check failed');
        }
      }),
    );
    return { ok, results };
  };

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', async (_req, res) => {
    if (lifecycle.draining) {
      res.status(503).json(details ? { status: 'draining', ...info?.() } : { status: 'draining' });
      return;
    }
    let checked: Promise<{ ok: boolean; results: Record<string, string> }>;
    if (details) {
      checked = runChecks();
    } else {
      if (!recent || Date.now() - recent.at > 1000) recent = { at: Date.now(), result: runChecks() };
      checked = recent.result;
    }
    const { ok, results } = await checked;
    const status = ok ? 'ready' : 'unavailable';
    res.status(ok ? 200 : 503).json(details ? { status, checks: results, ...info?.() } : { status });
  });
  if (metrics) {
    app.get('/metrics', async (_req, res) => {
      res.set('Content-Type', registry.contentType);
      res.send(await registry.metrics());
    });
  }
}

export interface OpsServer {
  /** Base URL of `/health`, `/ready` (with details) and `/metrics`. */
  url: string;
  server: Server;
  /** Stops accepting, lets a scrape in progress finish, drops idle connections. */
  close(): Promise<void>;
}

/**
 * The operational endpoints on their own port (`OPS_PORT`), for Prometheus and orchestrators on
 * the internal network: `/health`, `/ready` with each check's result, `/metrics`. Nothing else
 * is served there.
 */
export async function startOpsServer(opts: ProbeOptions & { host: string; port: number }): Promise<OpsServer> {
  const app = express();
  app.disable('x-powered-by');
  mountProbes(app, opts);
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
