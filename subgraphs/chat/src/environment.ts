import { envParts, parseEnv, processEnv } from '@lib/env.js';
import { subgraphEnvSchema } from '@lib/subgraph-env.js';
import { z } from 'zod';

/** Exported for the deployment checks (tests/deploy): compose passes only these variables. */
export const schema = subgraphEnvSchema(4002).extend({
  /** The answer queue, answer streams and token budgets (noeviction; shared with the workers and routers). */
  REDIS_URL: envParts.url,
  /** Model tokens (prompt + completion) one user may spend per UTC day; 0 means no limit. */
  LLM_DAILY_TOKENS_PER_USER: z.coerce.number().int().min(0).default(200_000),
});
export type ChatEnv = z.infer<typeof schema>;

export function readEnv(source = processEnv()): ChatEnv {
  return parseEnv(schema, source);
}
