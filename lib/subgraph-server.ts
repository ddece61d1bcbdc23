import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/index.js';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { DocumentNode } from 'graphql';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, errorBody } from './errors.js';
import { formatErrorFor, requestLogPlugin } from './graphql-plugins.js';
import { IdentityHeaders, type Identity } from './identity.js';
import type { AssertionVerifier } from './internal-auth.js';
import { createLifecycle, type Lifecycle, type ShutdownStep } from './lifecycle.js';
import type { Logger } from './logger.js';
import { metricsPlugin, type ServiceMetrics } from './metrics.js';
import { mountProbes } from './probes.js';
import { requestIdFrom } from './request-id.js';

/** A little more than the router's default MAX_BODY_BYTES (6 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 7 * 1024 * 1024;

/** What every subgraph resolver gets: who asks (verified), the request id, a logger that carries it. */
export interface SubgraphContext {
  identity: Identity;
  requestId: string;
  log: Logger;
}

export interface SubgraphServerOptions<C extends SubgraphContext> {
  name: string;
  typeDefs: DocumentNode;
  resolvers: GraphQLResolverMap<C>;
  host: string;
  port: number;
  production: boolean;
  drainDelayMs: number;
  shutdownTimeoutMs: number;
  log: Logger;
  verifier: AssertionVerifier;
  metrics: ServiceMetrics;
  /** Readiness checks (database, ...). */
  checks: Record<string, () => Promise<unknown>>;
  /** Adds per-request state (DataLoaders, clients) to the verified base context. */
  createContext: (base: SubgraphContext) => C;
  /** Closed in order after HTTP has drained. */
  closeSteps: ShutdownStep[];
  /** Largest JSON body on /graphql (default 7 MiB): at least the router's MAX_BODY_BYTES, plus the gateway's own query. */
  maxBodyBytes?: number | undefined;
}

export interface RunningSubgraph {
  url: string;
  server: Server;
  lifecycle: Lifecycle;
}

/**
 * A subgraph's HTTP server: probes, then `/graphql` behind the internal
 * assertion check. Anything without a valid assertion from the router gets 401.
 */
export async function startSubgraphServer<C extends SubgraphContext>(opts: SubgraphServerOptions<C>): Promise<RunningSubgraph> {
  const { log, verifier, metrics } = opts;
  const app = express();
  app.disable('x-powered-by');
  // Idle keep-alive sockets must outlive the router's pool: if the server closed first, the
  // router could send on a socket that is closing and get "socket hang up".
  const server = createServer({ keepAliveTimeout: 75_000, headersTimeout: 80_000 }, app);

  const apollo = new ApolloServer<C>({
    // The resolver map is typed per subgraph context; buildSubgraphSchema only knows `unknown`.
    schema: buildSubgraphSchema({ typeDefs: opts.typeDefs, resolvers: opts.resolvers as GraphQLResolverMap<unknown> }),
    introspection: !opts.production,
    includeStacktraceInErrorResponses: !opts.production,
    // SIGTERM is the lifecycle's (readiness, drain delay, ordered close): outside NODE_ENV=test
    // Apollo Server would otherwise stop the server itself and re-send the signal at once.
    stopOnTerminationSignals: false,
    formatError: formatErrorFor(log, opts.production),
    // No Apollo Studio here: federated traces would only cost time.
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer: server }),
      ApolloServerPluginInlineTraceDisabled(),
      metricsPlugin(metrics),
      requestLogPlugin<C>(),
    ],
  });
  await apollo.start();

  const lifecycle = createLifecycle({
    log,
    drainDelayMs: opts.drainDelayMs,
    timeoutMs: opts.shutdownTimeoutMs,
    steps: [{ name: 'http', run: () => apollo.stop() }, ...opts.closeSteps],
  });
  mountProbes(app, { lifecycle, registry: metrics.registry, log, checks: opts.checks });

  const authenticate = async (req: Request, res: Response, next: NextFunction) => {
    try {
      const { identity } = await verifier.verify(req.header(IdentityHeaders.assertion));
      const requestId = requestIdFrom(req.header(IdentityHeaders.requestId));
      const claimedUser = req.header(IdentityHeaders.userId);
      if (claimedUser !== undefined && claimedUser !== identity.userId) {
        throw new Error('x-user-id does not match the internal assertion');
      }
      res.locals['base'] = { identity, requestId, log: log.child({ reqId: requestId, userId: identity.userId }) } satisfies SubgraphContext;
      next();
    } catch (err) {
      log.warn(
        { reqId: req.header(IdentityHeaders.requestId), reason: (err as Error).message, ip: req.socket.remoteAddress },
        'request refused: no valid internal assertion',
      );
      res.status(401).json(errorBody(ErrorCode.UNAUTHENTICATED, 'This service only accepts requests from the router'));
    }
  };

  app.use(
    '/graphql',
    authenticate,
    // What the router accepts (ingestDocument's pasted text) must fit here too, with the query the gateway writes.
    express.json({ limit: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES }),
    expressMiddleware(apollo, { context: async ({ res }) => opts.createContext(res.locals['base'] as SubgraphContext) }),
  );

  await new Promise<void>((resolve) => server.listen(opts.port, opts.host, resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://${opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host}:${port}/graphql`;
  log.info({ url, subgraph: opts.name }, 'subgraph ready');
  return { url, server, lifecycle };
}
