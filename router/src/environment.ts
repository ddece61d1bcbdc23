import { z } from 'zod';
import { envParts, parseEnv, processEnv } from '@lib/env.js';
import { Roles } from '@lib/identity.js';

const list = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

/** Exported for the deployment checks (tests/deploy): compose passes only these variables. */
export const schema = z
  .object({
    NODE_ENV: envParts.nodeEnv,
    HOST: envParts.host,
    PORT: envParts.port(4000),
    /** /metrics and /ready with details: an internal port, never published (Prometheus scrapes it). */
    OPS_PORT: envParts.port(9400),
    LOG_LEVEL: envParts.logLevel,
    LOG_FORMAT: envParts.logFormat,

    SUPERGRAPH_PATH: z.string().min(1).default('schema/supergraph.graphql'),
    SUPERGRAPH_POLL_MS: envParts.ms(500),
    SUBGRAPH_RAG_URL: z.string().url().optional(),
    SUBGRAPH_CHAT_URL: z.string().url().optional(),
    SUBGRAPH_EXAM_URL: z.string().url().optional(),
    SUBGRAPH_TASKS_URL: z.string().url().optional(),
    /**
     * How long the router waits for a subgraph's answer before giving up on that part of the
     * query (the rest is answered, with a SERVICE_UNAVAILABLE error naming the subgraph).
     * Subgraphs only do short work (long jobs are tasks); SUBGRAPH_<NAME>_TIMEOUT_MS sets one.
     */
    SUBGRAPH_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(15_000),
    SUBGRAPH_RAG_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).optional(),
    SUBGRAPH_CHAT_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).optional(),
    SUBGRAPH_EXAM_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).optional(),
    SUBGRAPH_TASKS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).optional(),
    /** How often each subgraph's /ready is polled for the router's health view (/ready on OPS_PORT, subgraph_up). */
    SUBGRAPH_HEALTH_INTERVAL_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),

    JWT_ISSUER: z.string().min(1),
    JWT_AUDIENCE: z.string().min(1),
    JWT_ALGORITHMS: list.pipe(z.array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'])).min(1)).default(['RS256']),
    JWT_JWKS_URL: z.string().url().optional(),
    JWT_JWKS: z.string().optional(),
    JWT_ROLE_CLAIM: z.string().min(1).default('role'),
    JWT_DEFAULT_ROLE: z.enum(Roles).optional(),
    JWT_CLOCK_TOLERANCE_S: z.coerce.number().int().min(0).max(300).default(5),

    INTERNAL_JWT_PRIVATE_JWK: envParts.jwk,

    REDIS_URL: envParts.url,
    RATE_LIMIT_WINDOW_S: envParts.positiveInt(60),
    RATE_LIMIT_STUDENT: envParts.positiveInt(120),
    RATE_LIMIT_TEACHER: envParts.positiveInt(300),
    RATE_LIMIT_ADMIN: envParts.positiveInt(1000),
    /** A request takes one point; an operation round(cost / this), at least one. */
    RATE_LIMIT_COST_PER_POINT: envParts.positiveInt(100),

    /** What one operation may ask, over HTTP and in a subscription (router/src/limits.ts). */
    QUERY_MAX_TOKENS: envParts.positiveInt(1000),
    QUERY_MAX_DEPTH: envParts.positiveInt(10),
    /** `__typename` counts. */
    QUERY_MAX_ALIASES: z.coerce.number().int().min(0).default(15),
    QUERY_MAX_DIRECTIVES: z.coerce.number().int().min(0).default(5),
    QUERY_MAX_COST: envParts.positiveInt(5000),

    INTROSPECTION: envParts.bool.optional(),
    CORS_ORIGINS: list.default([]),
    SANDBOX_DEV_TOKEN: z.string().optional(),
    /**
     * 6 MiB: room for ingestDocument's largest pasted text however the client encodes its JSON: each of
     * its 1,000,000 UTF-16 units takes at most 6 bytes (`\uXXXX`), 3 as raw UTF-8. The subgraphs'
     * MAX_BODY_BYTES must be larger.
     */
    MAX_BODY_BYTES: envParts.positiveInt(6 * 1024 * 1024),
    /**
     * GraphQL requests over HTTP one replica serves at once; past it a new one is refused at once
     * (503 SERVICE_UNAVAILABLE, reason OVERLOADED, Retry-After 1) instead of waiting behind the
     * others until a subgraph's deadline. 512: a replica answering a few hundred requests a second
     * only gets there when they take seconds each. Subscriptions have their own limits (WS_MAX_*).
     */
    MAX_IN_FLIGHT: envParts.positiveInt(512),
    /** Where uploads are stored; shared with the workers. */
    BLOB_DIR: z.string().min(1).default('.data/blobs'),
    UPLOAD_MAX_BYTES: envParts.positiveInt(100 * 1024 * 1024),
    UPLOAD_TTL_S: envParts.positiveInt(24 * 3600),
    /** Bytes a user may upload per UTC day (files here, pasted texts at the rag subgraph); 0: no limit. */
    UPLOAD_DAILY_BYTES_PER_USER: z.coerce
      .number()
      .int()
      .min(0)
      .default(2 * 1024 ** 3),
    /** Checks Document.fileUrl links (GET /files/...); the rag subgraph signs them with the same secret. Unset: refused. */
    FILE_URL_SECRET: z.string().min(32).optional(),
    WS_MAX_CONNECTIONS_PER_USER: envParts.positiveInt(10),
    WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: envParts.positiveInt(100),
    /** answerStream: how often a streamed answer's status is re-read, in case its done event never comes. */
    ANSWER_RECHECK_MS: z.coerce.number().int().min(50).max(600_000).default(10_000),
    /** Task subscriptions: how often a task that is not final is re-read, in case its final event never comes. */
    TASK_RECHECK_MS: z.coerce.number().int().min(50).max(600_000).default(10_000),
    DRAIN_DELAY_MS: envParts.ms(0),
    SHUTDOWN_TIMEOUT_MS: envParts.ms(15_000),
  })
  .superRefine((env, ctx) => {
    if (!env.JWT_JWKS_URL && !env.JWT_JWKS) {
      ctx.addIssue({
        code: 'custom',
        path: ['JWT_JWKS_URL'],
        message: 'set JWT_JWKS_URL (an OIDC provider) or JWT_JWKS (a local key set)',
      });
    }
  });

export type RouterEnv = z.infer<typeof schema>;

export function readEnv(source = processEnv()): RouterEnv {
  return parseEnv(schema, source);
}
