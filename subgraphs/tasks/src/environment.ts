import { z } from 'zod';
import { envParts, parseEnv, processEnv } from '@lib/env.js';
import { subgraphEnvSchema } from '@lib/subgraph-env.js';

const schema = subgraphEnvSchema(4004).extend({
  /** Queues and task events. */
  REDIS_URL: envParts.url,
});
export type TasksEnv = z.infer<typeof schema>;

export function readEnv(source = processEnv()): TasksEnv {
  return parseEnv(schema, source);
}
