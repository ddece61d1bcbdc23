import { Counter, Histogram, type Registry } from 'prom-client';

export interface TutorMetrics {
  /** From the job's start to the first piece of text published. */
  timeToFirstToken: Histogram<'engine'>;
  /** Completion tokens per second of generation, model engine only. */
  tokensPerSecond: Histogram<string>;
  answers: Counter<'outcome' | 'engine'>;
  cache: Counter<'result'>;
  modelErrors: Counter<'code'>;
  tokens: Counter<'kind'>;
  droppedMarkers: Counter<string>;
}

export function createTutorMetrics(registry: Registry): TutorMetrics {
  return {
    timeToFirstToken: new Histogram({
      name: 'tutor_time_to_first_token_seconds',
      help: 'Time from an answer job starting to its first text being published',
      labelNames: ['engine'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    tokensPerSecond: new Histogram({
      name: 'tutor_tokens_per_second',
      help: 'Completion tokens per second while a model writes an answer',
      buckets: [1, 5, 10, 20, 40, 80, 160],
      registers: [registry],
    }),
    answers: new Counter({
      name: 'tutor_answers_total',
      help: 'Answers by outcome (complete, not_covered, failed, cancelled) and engine',
      labelNames: ['outcome', 'engine'] as const,
      registers: [registry],
    }),
    cache: new Counter({
      name: 'tutor_cache_total',
      help: 'Answer cache lookups by result',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    modelErrors: new Counter({
      name: 'tutor_model_errors_total',
      help: 'Model calls that failed, by code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    tokens: new Counter({
      name: 'tutor_tokens_total',
      help: 'Model tokens used by the tutor, by kind (prompt, completion)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    droppedMarkers: new Counter({
      name: 'tutor_dropped_markers_total',
      help: 'Citation markers a model wrote that named no given passage',
      registers: [registry],
    }),
  };
}
