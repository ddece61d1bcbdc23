import { parseEnv, processEnv } from '@lib/env.js';
import { subgraphEnvSchema, type SubgraphEnv } from '@lib/subgraph-env.js';

const schema = subgraphEnvSchema(4002);

export function readEnv(source = processEnv()): SubgraphEnv {
  return parseEnv(schema, source);
}
