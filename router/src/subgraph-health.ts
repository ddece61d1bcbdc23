import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '@lib/logger.js';
import type { SubgraphHealthSink } from './datasource.js';

export interface SubgraphState {
  status: 'up' | 'down' | 'unknown';
  /** Why it is down: the last failed probe or fetch. */
  reason?: string;
  /** When the status last changed (ISO 8601). */
  since: string;
}

export interface SubgraphHealth extends SubgraphHealthSink {
  /** Each subgraph's state, for the router's detailed /ready. */
  view(): Record<string, SubgraphState>;
  /** One round of probes now (at start, once the gateway knows its subgraphs). */
  probeNow(): Promise<void>;
  close(): void;
}

/**
 * Which subgraphs answer, as the router sees them: each one's `/ready` polled every `intervalMs`,
 * and every real fetch reported as it happens (a failed fetch marks a subgraph down at once; the
 * next successful fetch or probe marks it up). Shown in the detailed `/ready` and as
 * `subgraph_up{subgraph}`. A subgraph being down does not make the router unready: it still
 * answers everything else, and partial data for the rest.
 */
export function createSubgraphHealth(opts: {
  /** Each subgraph's GraphQL URL, as the gateway builds its data sources (read on every round). */
  urls: ReadonlyMap<string, string>;
  intervalMs: number;
  registry: Registry;
  log: Logger;
}): SubgraphHealth {
  const states = new Map<string, SubgraphState>();
  const gauge = new Gauge({
    name: 'subgraph_up',
    help: 'Whether the router reaches each subgraph (1 up, 0 down), from its /ready and from real fetches',
    labelNames: ['subgraph'],
    registers: [opts.registry],
  });

  const set = (name: string, up: boolean, reason?: string) => {
    const before = states.get(name);
    const status = up ? 'up' : 'down';
    gauge.set({ subgraph: name }, up ? 1 : 0);
    if (before?.status === status) {
      if (!up && reason) before.reason = reason;
      return;
    }
    states.set(name, { status, ...(up ? {} : { reason: reason ?? 'unknown' }), since: new Date().toISOString() });
    if (before !== undefined || !up) {
      opts.log[up ? 'info' : 'warn']({ subgraph: name, ...(up ? {} : { reason }) }, up ? 'subgraph back up' : 'subgraph down');
    }
  };

  const probeTimeoutMs = Math.min(2000, opts.intervalMs);
  const probe = async (name: string, graphqlUrl: string) => {
    const readyUrl = new URL('/ready', graphqlUrl);
    try {
      const res = await fetch(readyUrl, { signal: AbortSignal.timeout(probeTimeoutMs) });
      await res.body?.cancel();
      set(name, res.ok, res.ok ? undefined : `/ready answered ${res.status}`);
    } catch (err) {
      const e = err as { name?: string; cause?: { code?: string }; message?: string };
      set(
        name,
        false,
        e.name === 'TimeoutError' ? `/ready: no answer within ${probeTimeoutMs} ms` : (e.cause?.code ?? e.message ?? 'unreachable'),
      );
    }
  };

  let running = false;
  const round = async () => {
    if (running) return; // a stalled subgraph's probe still waiting: never pile up
    running = true;
    try {
      await Promise.all([...opts.urls.entries()].map(([name, url]) => probe(name, url)));
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void round(), opts.intervalMs);
  timer.unref();

  return {
    probeNow: () => round(),
    report: (subgraph, ok, reason) => set(subgraph, ok, reason),
    view: () =>
      Object.fromEntries(
        [...opts.urls.keys()]
          .sort()
          .map((name) => [name, { ...(states.get(name) ?? { status: 'unknown', since: new Date().toISOString() }) }]),
      ),
    close: () => clearInterval(timer),
  };
}
