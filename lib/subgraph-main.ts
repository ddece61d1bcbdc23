import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/index.js';
import { parse } from 'graphql';
import { readFileSync } from 'node:fs';
import { createPrisma, type PrismaClient } from './db/client.js';
import { createAssertionVerifier } from './internal-auth.js';
import type { ShutdownStep } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type ServiceMetrics } from './metrics.js';
import type { SubgraphEnv } from './subgraph-env.js';
import { startSubgraphServer, type SubgraphContext } from './subgraph-server.js';

export interface SubgraphBase {
  log: Logger;
  metrics: ServiceMetrics;
  prisma: PrismaClient;
  start<C extends SubgraphContext>(opts: {
    schemaUrl: URL;
    resolvers: GraphQLResolverMap<C>;
    createContext: (base: SubgraphContext) => C;
    checks?: Record<string, () => Promise<unknown>>;
    closeSteps?: ShutdownStep[];
  }): ReturnType<typeof startSubgraphServer<C>>;
}

/**
 * The dependencies every subgraph has (logger, metrics, Prisma through
 * PgBouncer, the assertion verifier), built from its validated environment.
 * A subgraph's composition root adds its own and calls `start`.
 */
export async function createSubgraphBase(name: string, env: SubgraphEnv): Promise<SubgraphBase> {
  const log = createLogger({ service: name, level: env.LOG_LEVEL, format: env.LOG_FORMAT });
  const metrics = createMetrics(name);
  const prisma = createPrisma({
    url: env.DATABASE_URL,
    max: env.DB_POOL_MAX,
    registry: metrics.registry,
    log: log.child({ component: 'prisma' }),
    applicationName: name,
  });
  const verifier = await createAssertionVerifier(env.INTERNAL_JWT_PUBLIC_JWK, name);
  return {
    log,
    metrics,
    prisma,
    start: (opts) =>
      startSubgraphServer({
        name,
        typeDefs: parse(readFileSync(opts.schemaUrl, 'utf8')),
        resolvers: opts.resolvers,
        host: env.HOST,
        port: env.PORT,
        production: env.NODE_ENV === 'production',
        drainDelayMs: env.DRAIN_DELAY_MS,
        shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
        maxBodyBytes: env.MAX_BODY_BYTES,
        log,
        metrics,
        verifier,
        checks: { database: () => prisma.$queryRaw`SELECT 1`, ...opts.checks },
        createContext: opts.createContext,
        // Servers drain first (inside startSubgraphServer); clients close last.
        closeSteps: [...(opts.closeSteps ?? []), { name: 'database', run: () => prisma.$disconnect() }],
      }),
  };
}
