import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { expressMiddleware } from '@as-integrations/express5';
import cors from 'cors';
import express, { type NextFunction, type Request, type Response } from 'express';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter } from 'prom-client';
import { ErrorCode, errorBody, UNAVAILABLE_RETRY_AFTER_S } from '@lib/errors.js';
import { formatErrorFor, requestLogPlugin } from '@lib/graphql-plugins.js';
import type { AssertionSigner } from '@lib/internal-auth.js';
import { createLifecycle, type Lifecycle, type ShutdownStep } from '@lib/lifecycle.js';
import type { Logger } from '@lib/logger.js';
import { latencyHistogram, metricsPlugin, type ServiceMetrics } from '@lib/metrics.js';
import { mountProbes, startOpsServer } from '@lib/probes.js';
import { requestIdFrom } from '@lib/request-id.js';
import { AuthError, KeySourceError, type Authenticator } from './auth.js';
import type { RouterContext } from './context.js';
import { SubgraphDataSource } from './datasource.js';
import type { RateDecision, RateLimiter, RateRefusal } from './rate-limit.js';
import { FileSupergraphManager } from './supergraph.js';
import { createUploadHandler, type UploadHandlerDeps } from './uploads.js';
import { createFileHandler } from './files.js';
import { FILES_PATH } from '@lib/file-links.js';
import { startSubscriptions, type SubscriptionLimits } from './subscriptions.js';
import type { AnswerStreamDeps } from './answer-stream.js';
import type { TaskEventStream } from '@lib/tasks/events.js';
import type { ApolloServerPlugin } from '@apollo/server';
import { GraphQLError } from 'graphql';
import { createQueryGuard, type QueryLimits } from './limits.js';
import { unavailableResponses } from './unavailable.js';
import { createSubgraphHealth } from './subgraph-health.js';
import { createAdmission } from './admission.js';

/** How long a replaced supergraph's subgraph pools stay open for the queries planned on it (at least twice the subgraph's deadline). */
const RETIRED_POOL_CLOSE_MS = 120_000;
export interface RouterOptions {
  host: string;
  port: number;
  /** Port of /metrics and /ready with details (internal network only); 0 picks a free one. */
  opsPort: number;
  production: boolean;
  introspection: boolean;
  supergraphPath: string;
  supergraphPollMs: number;
  subgraphUrls: Record<string, string | undefined>;
  /** Per subgraph: how long the router waits for it (SUBGRAPH_TIMEOUT_MS, SUBGRAPH_<NAME>_TIMEOUT_MS). */
  subgraphTimeoutMs: (subgraph: string) => number;
  /** How often each subgraph's /ready is polled for the health view. */
  subgraphHealthIntervalMs: number;
  corsOrigins: string[];
  sandboxToken?: string | undefined;
  maxBodyBytes: number;
  /** GraphQL requests over HTTP served at once (MAX_IN_FLIGHT); past it, 503 OVERLOADED at once. */
  maxInFlight: number;
  drainDelayMs: number;
  shutdownTimeoutMs: number;
  log: Logger;
  metrics: ServiceMetrics;
  authenticator: Authenticator;
  rateLimiter: RateLimiter;
  signer: AssertionSigner;
  checks: Record<string, () => Promise<unknown>>;
  closeSteps: ShutdownStep[];
  events: TaskEventStream;
  /** `answerStream`: the hub of live answer events, the history reader, the recheck period. */
  answers: AnswerStreamDeps;
  subscriptionLimits: SubscriptionLimits;
  /** What one operation may ask (tokens, depth, aliases, directives, cost) and how its cost is charged. */
  queryLimits: QueryLimits;
  /** POST /uploads: where files go and how big they may be. */
  uploads: Omit<UploadHandlerDeps, 'log'>;
  /** GET /files/...: signed links to documents' files (Document.fileUrl), checked with this secret; unset, refused. */
  fileUrlSecret?: string | undefined;
}

/** Over HTTP the gateway cannot run subscriptions: say where they are served instead of failing obscurely. */
const subscriptionsOverWebSocket: ApolloServerPlugin<RouterContext> = {
  async requestDidStart() {
    return {
      async didResolveOperation({ operation }) {
        if (operation?.operation === 'subscription') {
          throw new GraphQLError('Subscriptions are served over WebSocket (graphql-ws protocol) at this same URL', {
            extensions: { code: ErrorCode.BAD_USER_INPUT, http: { status: 400 } },
          });
        }
      },
    };
  },
};

export interface RunningRouter {
  url: string;
  /** Base URL of the operational endpoints (/health, /ready with details, /metrics). */
  opsUrl: string;
  server: Server;
  lifecycle: Lifecycle;
  gateway: ApolloGateway;
}

/** `locals.log`, made by `make` when first read unless something is assigned first. */
function lazyRequestLog(locals: Record<string, unknown>, make: () => Logger) {
  Object.defineProperty(locals, 'log', {
    configurable: true,
    enumerable: true,
    get() {
      const made = make();
      Object.defineProperty(locals, 'log', { value: made, writable: true, configurable: true, enumerable: true });
      return made;
    },
    set(value: Logger) {
      Object.defineProperty(locals, 'log', { value, writable: true, configurable: true, enumerable: true });
    },
  });
}

/** The sandbox served from Apollo's CDN in development: it needs these origins. */
const SANDBOX_ORIGINS = ['https://studio.apollographql.com', 'https://sandbox.apollo.dev'];

export async function startRouter(opts: RouterOptions): Promise<RunningRouter> {
  const { log, metrics } = opts;
  const fetchSeconds = latencyHistogram(metrics.registry, 'subgraph_fetch_duration_seconds', 'Router to subgraph fetch latency', [
    'subgraph',
    'outcome',
  ]);
  const rateLimited = new Counter({
    name: 'rate_limit_rejections_total',
    help: 'Requests refused by the per-user rate limit',
    labelNames: ['role'],
    registers: [metrics.registry],
  });
  const authFailures = new Counter({
    name: 'auth_failures_total',
    help: 'Requests refused for their token',
    labelNames: ['reason'],
    registers: [metrics.registry],
  });

  const jwksFailures = new Counter({
    name: 'jwks_failures_total',
    help: 'Tokens that could not be checked because the key set (JWKS) was unavailable',
    registers: [metrics.registry],
  });
  // Counted wherever a token is checked: GraphQL over HTTP, uploads and graphql-ws connections.
  const authenticator: Authenticator = {
    ...opts.authenticator,
    authenticate: async (header) => {
      try {
        return await opts.authenticator.authenticate(header);
      } catch (err) {
        if (err instanceof KeySourceError) jwksFailures.inc();
        throw err;
      }
    },
  };

  const subgraphTargets = new Map<string, string>();
  const subgraphHealth = createSubgraphHealth({
    urls: subgraphTargets,
    intervalMs: opts.subgraphHealthIntervalMs,
    registry: metrics.registry,
    log,
  });
  const dataSources = new Map<string, SubgraphDataSource>();
  const retiredSources = new Set<SubgraphDataSource>();
  const gateway = new ApolloGateway({
    supergraphSdl: new FileSupergraphManager(opts.supergraphPath, opts.supergraphPollMs, log),
    buildService: ({ name, url }) => {
      const target = opts.subgraphUrls[name] ?? url;
      if (!target) throw new Error(`no URL for subgraph "${name}"`);
      subgraphTargets.set(name, target);
      const source = new SubgraphDataSource(name, target, opts.signer, fetchSeconds, opts.subgraphTimeoutMs(name), subgraphHealth);
      // A new supergraph builds new data sources. The old one's pool is closed a while later, not at
      // once: a query planned on the old supergraph may still send its next fetch through it, and a
      // closed pool refuses it (UND_ERR_CLOSED, which would read as the subgraph being down).
      const previous = dataSources.get(name);
      dataSources.set(name, source);
      if (previous) {
        retiredSources.add(previous);
        setTimeout(
          () => {
            retiredSources.delete(previous);
            void previous.close().catch(() => undefined);
          },
          Math.max(RETIRED_POOL_CLOSE_MS, 2 * opts.subgraphTimeoutMs(name)),
        ).unref();
      }
      return source;
    },
    logger: log.child({ component: 'gateway' }),
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  // Large uploads on slow links need more than Node's default 300 s for a whole request. Idle
  // keep-alive connections stay open longer than nginx's upstream keepalive_timeout (60 s) and a
  // client's think time: with Node's default 5 s, a client (or nginx) reusing a connection the
  // router had just closed got ECONNRESET (seen under `npm run load` against the router alone).
  const server = createServer({ requestTimeout: 3_600_000, keepAliveTimeout: 75_000, headersTimeout: 80_000 }, app);

  const landingPage = opts.production
    ? ApolloServerPluginLandingPageDisabled()
    : ApolloServerPluginLandingPageLocalDefault({
        embed: {
          endpointIsEditable: false,
          initialState: {
            pollForSchemaUpdates: false,
            sharedHeaders: opts.sandboxToken ? { Authorization: `Bearer ${opts.sandboxToken}` } : {},
          },
        },
        includeCookies: false,
        footer: false,
      });

  const guard = createQueryGuard({
    limits: opts.queryLimits,
    production: opts.production,
    onRateLimited: (context, decision) => {
      const identity = (context as RouterContext).identity;
      rateLimited.inc({ role: identity.role });
      (context as RouterContext).log.warn({ retryAfterS: decision.retryAfterS, cost: context.cost }, 'request refused: rate limited');
    },
  });
  const formatError = formatErrorFor(log, opts.production);

  const apollo = new ApolloServer<RouterContext>({
    gateway,
    introspection: opts.introspection,
    includeStacktraceInErrorResponses: !opts.production,
    formatError: (formatted, error) => formatError(guard.formatError(formatted), error),
    parseOptions: guard.parseOptions,
    validationRules: guard.validationRules,
    // Stated, though they are Apollo Server's defaults: one operation per request, and no
    // operation from a request a browser may send cross-site without a preflight.
    allowBatchedHttpRequests: false,
    csrfPrevention: true,
    // SIGTERM is the lifecycle's (readiness, DRAIN_DELAY_MS, ordered close): outside NODE_ENV=test
    // Apollo Server would otherwise stop the server itself and re-send the signal at once.
    stopOnTerminationSignals: false,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer: server }),
      metricsPlugin(metrics),
      requestLogPlugin<RouterContext>(),
      subscriptionsOverWebSocket,
      unavailableResponses,
      ...guard.plugins,
      landingPage,
    ],
  });
  await apollo.start();
  void subgraphHealth.probeNow();

  const subscriptions = startSubscriptions({
    server,
    path: '/graphql',
    apollo,
    schema: () => gateway.schema,
    authenticator,
    events: opts.events,
    log,
    registry: metrics.registry,
    limits: opts.subscriptionLimits,
    rateLimiter: opts.rateLimiter,
    answers: opts.answers,
    guard,
  });

  // /metrics and /ready with each check's result: on the internal port only.
  const probeChecks = {
    supergraph: async () => {
      if (!gateway.schema) throw new Error('no supergraph loaded');
    },
    ...opts.checks,
  };
  let draining = () => false;
  const ops = await startOpsServer({
    host: opts.host,
    port: opts.opsPort,
    lifecycle: {
      get draining() {
        return draining();
      },
    },
    registry: metrics.registry,
    log,
    checks: probeChecks,
    info: () => ({ subgraphs: subgraphHealth.view() }),
  });

  const lifecycle = createLifecycle({
    log,
    drainDelayMs: opts.drainDelayMs,
    timeoutMs: opts.shutdownTimeoutMs,
    steps: [
      // WebSocket clients are told to reconnect elsewhere (1001), then HTTP drains.
      { name: 'subscriptions', run: () => subscriptions.close() },
      { name: 'http', run: () => apollo.stop() },
      { name: 'subgraph health', run: async () => subgraphHealth.close() },
      {
        name: 'subgraph connections',
        run: () =>
          Promise.all([...dataSources.values(), ...retiredSources].map((s) => s.close().catch(() => undefined))).then(() => undefined),
      },
      ...opts.closeSteps,
      // Last: readiness stays observable (503) on the internal port until the end.
      { name: 'ops', run: () => ops.close() },
    ],
  });
  draining = () => lifecycle.draining;

  // Every request gets an id (the client's, if it is safe to log) and a logger carrying it. The
  // logger is made when first used: an authenticated request gets one carrying its user as well
  // (authenticate), so the hot path makes one child logger, not two.
  app.use((req, res, next) => {
    const requestId = requestIdFrom(req.headers['x-request-id']);
    res.setHeader('X-Request-ID', requestId);
    res.locals['requestId'] = requestId;
    lazyRequestLog(res.locals, () => log.child({ reqId: requestId }));
    next();
  });
  // The public port: /health for load balancers, /ready as a status only (no dependency errors), no /metrics.
  mountProbes(app, { lifecycle, registry: metrics.registry, log, checks: probeChecks }, { details: false, metrics: false });

  const allowedOrigins = new Set([...opts.corsOrigins, ...(opts.production ? [] : SANDBOX_ORIGINS)]);
  const corsMiddleware = cors({
    origin: (origin, cb) =>
      cb(null, !origin || allowedOrigins.has(origin) || (!opts.production && /^https?:\/\/(localhost|127\.0\.0\.1)(:\d+)?$/.test(origin))),
    exposedHeaders: ['X-Request-ID', 'Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining'],
    maxAge: 600,
  });

  /**
   * Exactly when Apollo Server answers with the landing page's HTML instead of running anything:
   * a GET whose Accept prefers text/html over every GraphQL response type (the same negotiation,
   * same order), with a landing page enabled (never in production). Any other request, GET
   * included, is authenticated and rate-limited like a POST; and the context refuses one without
   * an identity, should the two ever disagree.
   */
  const servesLandingPage = (req: Request) =>
    !opts.production &&
    req.method === 'GET' &&
    !!req.headers.accept &&
    req.accepts([
      'application/json; charset=utf-8',
      'application/graphql-response+json; charset=utf-8',
      'multipart/mixed; deferSpec=20220824',
      'multipart/mixed; incrementalSpec=v0.2',
      'multipart/mixed',
      'text/html',
    ]) === 'text/html';

  const authenticate = async (req: Request, res: Response, next: NextFunction) => {
    if (servesLandingPage(req)) return next();
    try {
      const identity = await authenticator.authenticate(req.headers.authorization);
      res.locals['identity'] = identity;
      res.locals['log'] = log.child({ reqId: res.locals['requestId'] as string, userId: identity.userId });
      next();
    } catch (err) {
      const reqLog = res.locals['log'] as Logger;
      if (err instanceof AuthError) {
        authFailures.inc({ reason: err.reason });
        reqLog.info({ reason: err.reason }, 'request refused: authentication failed');
        res.setHeader('WWW-Authenticate', `Bearer error="invalid_token"`);
        res.status(401).json(errorBody(ErrorCode.UNAUTHENTICATED, err.message, { reason: err.reason }));
      } else if (err instanceof KeySourceError) {
        reqLog.error({ err }, 'key set unavailable');
        res.setHeader('Retry-After', String(UNAVAILABLE_RETRY_AFTER_S));
        res.status(503).json(
          errorBody(ErrorCode.SERVICE_UNAVAILABLE, 'Authentication is temporarily unavailable', {
            retryAfter: UNAVAILABLE_RETRY_AFTER_S,
          }),
        );
      } else {
        next(err);
      }
    }
  };

  const refuse = (res: Response, identity: RouterContext['identity'], decision: RateRefusal) => {
    rateLimited.inc({ role: identity.role });
    (res.locals['log'] as Logger).warn({ retryAfterS: decision.retryAfterS }, 'request refused: rate limited');
    res.setHeader('X-RateLimit-Limit', String(decision.limit));
    res.setHeader('Retry-After', String(decision.retryAfterS));
    res
      .status(429)
      .json(
        errorBody(ErrorCode.RATE_LIMITED, `Too many requests; retry in ${decision.retryAfterS} s`, { retryAfter: decision.retryAfterS }),
      );
  };

  /** Uploads: one point, taken before the body is read. */
  const limit = async (_req: Request, res: Response, next: NextFunction) => {
    const identity = res.locals['identity'] as RouterContext['identity'] | undefined;
    if (!identity) return next();
    const decision = await opts.rateLimiter.consume(identity);
    if (!decision.allowed) return refuse(res, identity, decision);
    res.setHeader('X-RateLimit-Limit', String(decision.limit));
    res.setHeader('X-RateLimit-Remaining', String(decision.remaining));
    next();
  };

  /**
   * GraphQL: all of a request's points are charged in one call (one Redis round trip) once its
   * cost is known (the query guard's plugin), or one point when it ends before that (invalid,
   * malformed); a user this replica already knows to be over the limit for the window is refused
   * before the body is read, without a call. The decisions are those of charging the first point
   * before the body and the rest after pricing: within a fixed window the count only grows.
   */
  const limitGraphql = (_req: Request, res: Response, next: NextFunction) => {
    const identity = res.locals['identity'] as RouterContext['identity'] | undefined;
    if (!identity) return next();
    const known = opts.rateLimiter.knownRefusal(identity);
    if (known) return refuse(res, identity, known);
    let charged: Promise<RateDecision> | undefined;
    const charge = (points: number) => (charged ??= opts.rateLimiter.consume(identity, points));
    res.locals['charge'] = charge;
    // Answered without Apollo's pipeline (CSRF refusal, landing page): still one point.
    res.once('close', () => {
      if (!charged) void charge(1).catch((err: unknown) => log.warn({ err }, 'rate limit charge failed'));
    });
    next();
  };

  // Documents' files behind signed, expiring links: no token (the link is the credential), no per-user limit.
  app.get(`${FILES_PATH}/:documentId/:name`, createFileHandler({ secret: opts.fileUrlSecret, blobStore: opts.uploads.blobStore, log }));

  // Course material: streamed to the blob store, answered with an upload id for ingestDocument.
  app.post('/uploads', corsMiddleware, authenticate, limit, createUploadHandler({ ...opts.uploads, log }));

  // Past MAX_IN_FLIGHT, refused before the token is checked or the body read (CORS preflights pass).
  const admission = createAdmission({ maxInFlight: opts.maxInFlight, registry: metrics.registry, log });

  app.use(
    '/graphql',
    corsMiddleware,
    admission.middleware,
    authenticate,
    limitGraphql,
    express.json({ limit: opts.maxBodyBytes }),
    expressMiddleware(apollo, {
      context: async ({ res }): Promise<RouterContext> => {
        const identity = res.locals['identity'] as RouterContext['identity'] | undefined;
        if (!identity) {
          throw new GraphQLError('Missing bearer token in the Authorization header', {
            extensions: { code: ErrorCode.UNAUTHENTICATED, reason: 'MISSING_TOKEN', http: { status: 401 } },
          });
        }
        return {
          identity,
          requestId: res.locals['requestId'] as string,
          log: res.locals['log'] as Logger,
          // Every point of the request, once: by the query guard's plugin (see limitGraphql).
          chargeCost: res.locals['charge'] as (points: number) => Promise<RateDecision>,
        };
      },
    }),
  );

  // Malformed JSON, bodies over the limit, and anything unexpected: a GraphQL-shaped error, never a stack trace.
  app.use(async (err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    // A GraphQL request refused before Apollo (malformed JSON, too large) costs its one point; without it, 429.
    const charge = res.locals['charge'] as ((points: number) => Promise<RateDecision>) | undefined;
    const identity = res.locals['identity'] as RouterContext['identity'] | undefined;
    if (charge && identity) {
      const decision = await charge(1).catch(() => undefined);
      if (decision && !decision.allowed) return refuse(res, identity, decision);
    }
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) ((res.locals['log'] as Logger | undefined) ?? log).error({ err }, 'request failed');
    const code = status === 500 ? ErrorCode.INTERNAL_SERVER_ERROR : status === 413 ? ErrorCode.PAYLOAD_TOO_LARGE : ErrorCode.BAD_USER_INPUT;
    const message =
      status === 413
        ? `Request body too large: at most ${opts.maxBodyBytes} bytes`
        : status === 500
          ? 'Internal server error'
          : err.message;
    res.status(status).json(errorBody(code, message, status === 413 ? { maxBytes: opts.maxBodyBytes } : {}));
  });

  await new Promise<void>((resolve) => server.listen(opts.port, opts.host, resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://${opts.host === '0.0.0.0' ? 'localhost' : opts.host}:${port}/graphql`;
  return { url, opsUrl: ops.url, server, lifecycle, gateway };
}
