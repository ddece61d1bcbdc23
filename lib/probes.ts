import type { Express } from 'express';
import type { Registry } from 'prom-client';
import type { Lifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';

export interface ProbeOptions {
  lifecycle: Pick<Lifecycle, 'draining'>;
  registry: Registry;
  log: Logger;
  /** Every dependency the service needs to serve; each returns normally when reachable. */
  checks: Record<string, () => Promise<unknown>>;
}

/** `/health` (alive), `/ready` (dependencies reachable, not draining) and `/metrics`. */
export function mountProbes(app: Express, { lifecycle, registry, log, checks }: ProbeOptions) {
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', async (_req, res) => {
    if (lifecycle.draining) {
      res.status(503).json({ status: 'draining' });
      return;
    }
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
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'unavailable', checks: results });
  });
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', registry.contentType);
    res.send(await registry.metrics());
  });
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
