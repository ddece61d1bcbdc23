import type { Queue } from 'bullmq';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { ServiceMetrics } from '@lib/metrics.js';

export interface JobMetrics {
  duration: Histogram<'job' | 'outcome'>;
  failures: Counter<'job' | 'code'>;
  parserPeakRss: Histogram<string>;
}

const STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized', 'waiting-children'] as const;

export function createJobMetrics(metrics: ServiceMetrics, queues: () => Queue[]): JobMetrics {
  new Gauge({
    name: 'queue_jobs',
    help: 'Jobs in each queue by state',
    labelNames: ['queue', 'state'] as const,
    registers: [metrics.registry],
    async collect() {
      for (const queue of queues()) {
        const counts = await queue.getJobCounts(...STATES);
        for (const state of STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
      }
    },
  });
  new Gauge({
    name: 'queue_oldest_waiting_job_age_seconds',
    help: 'Age of the oldest job waiting in each queue (0 when none waits)',
    labelNames: ['queue'] as const,
    registers: [metrics.registry],
    async collect() {
      const now = Date.now();
      for (const queue of queues()) {
        // asc: oldest first; prioritized jobs wait in their own set.
        const oldest = await Promise.all([queue.getJobs(['wait'], 0, 0, true), queue.getJobs(['prioritized'], 0, 0, true)]);
        const times = oldest.flat().map((job) => job.timestamp);
        this.set({ queue: queue.name }, times.length ? Math.max(0, (now - Math.min(...times)) / 1000) : 0);
      }
    },
  });
  return {
    duration: new Histogram({
      name: 'job_duration_seconds',
      help: 'Time a worker spent on a job, by outcome',
      labelNames: ['job', 'outcome'] as const,
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
      registers: [metrics.registry],
    }),
    failures: new Counter({
      name: 'job_failures_total',
      help: 'Jobs that failed, by error code',
      labelNames: ['job', 'code'] as const,
      registers: [metrics.registry],
    }),
    parserPeakRss: new Histogram({
      name: 'parser_peak_rss_megabytes',
      help: 'Peak resident memory of the document parser process',
      buckets: [32, 64, 128, 256, 512, 1024, 2048],
      registers: [metrics.registry],
    }),
  };
}
