import { z } from 'zod';
import { envParts, parseEnv, processEnv } from '@lib/env.js';
import { subgraphEnvSchema } from '@lib/subgraph-env.js';

/** Exported for the deployment checks (tests/deploy): compose passes only these variables. */
export const schema = subgraphEnvSchema(4004).extend({
  /** Queues and task events. */
  REDIS_URL: envParts.url,
});
export type TasksEnv = z.infer<typeof schema>;

export function readEnv(source = processEnv()): TasksEnv {
  return parseEnv(schema, source);
}
