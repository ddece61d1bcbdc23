import { z } from 'zod';
import { envParts } from './env.js';

/** Variables every subgraph reads; each subgraph's environment module extends this. */
export function subgraphEnvSchema(defaultPort: number) {
  return z.object({
    NODE_ENV: envParts.nodeEnv,
    HOST: envParts.host,
    PORT: envParts.port(defaultPort),
    LOG_LEVEL: envParts.logLevel,
    LOG_FORMAT: envParts.logFormat,
    DATABASE_URL: envParts.url,
    DB_POOL_MAX: envParts.positiveInt(10),
    INTERNAL_JWT_PUBLIC_JWK: envParts.jwk,
    DRAIN_DELAY_MS: envParts.ms(0),
    SHUTDOWN_TIMEOUT_MS: envParts.ms(15_000),
    /** Largest JSON body on /graphql: at least the router's MAX_BODY_BYTES (6 MiB), plus room for the gateway's query. */
    MAX_BODY_BYTES: envParts.positiveInt(7 * 1024 * 1024),
  });
}

export type SubgraphEnv = z.infer<ReturnType<typeof subgraphEnvSchema>>;
