import { z } from 'zod';

/**
 * Every background job: its queue and the schema of its payload. The payload
 * is validated when enqueued and again when a worker takes it. The job id is
 * always the id of the Task row that tracks it.
 */
export const jobs = {
  INGEST_DOCUMENT: {
    queue: 'ingest',
    payload: z.object({
      taskId: z.string().uuid(),
      documentId: z.string().uuid(),
      courseId: z.string().uuid(),
    }),
  },
  /** Recomputes every vector of a course (after the embedding model changed). */
  REINDEX_COURSE: {
    queue: 'ingest',
    payload: z.object({
      taskId: z.string().uuid(),
      courseId: z.string().uuid(),
    }),
  },
  /** Writes an exam's questions from the course's material (the exam row holds the options). Its own queue: never behind ingestion. */
  GENERATE_EXAM: {
    queue: 'exam',
    payload: z.object({
      taskId: z.string().uuid(),
      examId: z.string().uuid(),
      courseId: z.string().uuid(),
    }),
  },
} as const;

export type JobName = keyof typeof jobs;
export type JobPayload<N extends JobName> = z.infer<(typeof jobs)[N]['payload']>;
export const jobNames = Object.keys(jobs) as JobName[];

export function parsePayload<N extends JobName>(name: N, data: unknown): JobPayload<N> {
  return jobs[name].payload.parse(data) as JobPayload<N>;
}

export function isJobName(name: string): name is JobName {
  return name in jobs;
}
