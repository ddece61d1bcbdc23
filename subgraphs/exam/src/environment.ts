import { envParts, parseEnv, processEnv } from '@lib/env.js';
import { subgraphEnvSchema } from '@lib/subgraph-env.js';
import { z } from 'zod';

/** Exported for the deployment checks (tests/deploy): compose passes only these variables. */
export const schema = subgraphEnvSchema(4003).extend({
  /** The exam generation queue and task events (shared with the workers and the tasks subgraph). */
  REDIS_URL: envParts.url,
});
export type ExamEnv = z.infer<typeof schema>;

export function readEnv(source = processEnv()): ExamEnv {
  return parseEnv(schema, source);
}
