import type { ApolloServerPlugin } from '@apollo/server';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Operation names come from clients: past this many distinct names, the rest count as "other". */
const MAX_OPERATION_LABELS = 200;

export interface ServiceMetrics {
  registry: Registry;
  requests: Counter<'operation' | 'outcome'>;
  duration: Histogram<'operation' | 'outcome'>;
  operationLabel(name: string | null | undefined): string;
}

/** A registry per service with process metrics and GraphQL request metrics. */
export function createMetrics(service: string): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'graphql_requests_total',
    help: 'GraphQL operations by operation name and outcome',
    labelNames: ['operation', 'outcome'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'graphql_request_duration_seconds',
    help: 'GraphQL operation latency by operation name and outcome',
    labelNames: ['operation', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const seen = new Set<string>();
  const operationLabel = (name: string | null | undefined): string => {
    const label = name ? name.slice(0, 64) : 'anonymous';
    if (seen.has(label)) return label;
    if (seen.size >= MAX_OPERATION_LABELS) return 'other';
    seen.add(label);
    return label;
  };
  return { registry, requests, duration, operationLabel };
}

export function latencyHistogram(registry: Registry, name: string, help: string, labelNames: readonly string[]) {
  return new Histogram({ name, help, labelNames, buckets: LATENCY_BUCKETS, registers: [registry] });
}

/** Counts and times every operation; outcome is "success" or the first error's code. */
export function metricsPlugin(metrics: ServiceMetrics): ApolloServerPlugin {
  return {
    async requestDidStart() {
      const started = process.hrtime.bigint();
      return {
        async willSendResponse({ request, response, errors, operationName }) {
          const body = response.body;
          const resultErrors = errors ?? (body.kind === 'single' ? body.singleResult.errors : undefined);
          const first = resultErrors?.[0];
          const code = first ? String(first.extensions?.['code'] ?? 'ERROR') : 'success';
          const labels = {
            operation: metrics.operationLabel(operationName ?? request.operationName),
            outcome: code === 'success' ? code : code.toLowerCase(),
          };
          metrics.requests.inc(labels);
          metrics.duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
        },
      };
    },
  };
}
