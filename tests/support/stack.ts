import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Role } from '../../lib/identity.js';
import { startService, startStack, type Stack } from '../../scripts/lib/stack.js';
import { testInfra } from './infra.js';
import { createTestKeys, TEST_AUDIENCE, TEST_ISSUER, type TestKeys } from './keys.js';

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: { data?: T | null; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}

export interface TestStack extends Stack {
  keys: TestKeys;
  /** The PostgreSQL (through PgBouncer) and Redis this stack uses. */
  infra: { DATABASE_URL: string; REDIS_URL: string };
  blobDir: string;
  /** A user id unique to this run, so tests never share data. */
  user(prefix: string): string;
  token(sub: string, role: Role): Promise<string>;
  gql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    init?: { token?: string; headers?: Record<string, string> },
  ): Promise<GraphQLResponse<T>>;
  as(
    sub: string,
    role: Role,
  ): Promise<<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>) => Promise<GraphQLResponse<T>>>;
}

/** The whole stack (four subgraphs and the router) as real processes on random ports. */
export async function startTestStack(
  opts: {
    router?: Record<string, string>;
    subgraphs?: Record<string, string>;
    worker?: Record<string, string>;
    workers?: number;
    /** Another PostgreSQL/Redis than the test profile's (the faults tier's). */
    infra?: { DATABASE_URL: string; REDIS_URL: string };
    /** How long each process may take to be ready (default 30 s; benchmarks on a busy machine give more). */
    startTimeoutMs?: number;
  } = {},
): Promise<TestStack> {
  const keys = await createTestKeys();
  const infra = opts.infra ?? testInfra();
  const subgraphEnv = { ...opts.subgraphs };
  const blobDir = mkdtempSync(join(tmpdir(), 'blobs-'));
  const stack = await startStack({
    workers: opts.workers ?? 1,
    ...(opts.startTimeoutMs ? { startTimeoutMs: opts.startTimeoutMs } : {}),
    env: {
      BLOB_DIR: blobDir,
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      DATABASE_URL: infra.DATABASE_URL,
      REDIS_URL: infra.REDIS_URL,
      INTERNAL_JWT_PUBLIC_JWK: JSON.stringify(keys.internal.publicJwk),
    },
    perService: {
      router: {
        JWT_ISSUER: TEST_ISSUER,
        JWT_AUDIENCE: TEST_AUDIENCE,
        JWT_JWKS: keys.jwks,
        INTERNAL_JWT_PRIVATE_JWK: JSON.stringify(keys.internal.privateJwk),
        ...opts.router,
      },
      rag: subgraphEnv,
      chat: subgraphEnv,
      exam: subgraphEnv,
      tasks: subgraphEnv,
      // Quick takeover of a crashed worker's job, and small limits the tests can reach.
      worker: {
        WORKER_LOCK_DURATION_MS: '2000',
        WORKER_STALLED_INTERVAL_MS: '1000',
        RECONCILE_INTERVAL_MS: '2000',
        PROGRESS_INTERVAL_MS: '50',
        ...opts.worker,
      },
    },
  });
  const run = randomUUID().slice(0, 8);
  const gql: TestStack['gql'] = async (query, variables = {}, init = {}) => {
    const res = await fetch(stack.routerUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...init.headers,
      },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as GraphQLResponse['body'] } as never;
  };
  return {
    ...stack,
    keys,
    infra: { DATABASE_URL: infra.DATABASE_URL, REDIS_URL: infra.REDIS_URL },
    blobDir,
    user: (prefix) => `${prefix}-${run}`,
    token: (sub, role) => keys.token(sub, role),
    gql,
    as: async (sub, role) => {
      const token = await keys.token(sub, role);
      return (query, variables) => gql(query, variables, { token });
    },
  };
}

/** Another router process on the same subgraphs, for tests that stop it, restart it or change its mode. */
export function startExtraRouter(stack: TestStack, name: string, env: Record<string, string> = {}) {
  return startService(name, {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    OPS_PORT: '0',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    REDIS_URL: stack.infra.REDIS_URL,
    BLOB_DIR: stack.blobDir,
    JWT_ISSUER: TEST_ISSUER,
    JWT_AUDIENCE: TEST_AUDIENCE,
    JWT_JWKS: stack.keys.jwks,
    INTERNAL_JWT_PRIVATE_JWK: JSON.stringify(stack.keys.internal.privateJwk),
    ...Object.fromEntries(['rag', 'chat', 'exam', 'tasks'].map((s) => [`SUBGRAPH_${s.toUpperCase()}_URL`, stack.services[s]!.url])),
    ...env,
  });
}

/** Parses the JSON log lines a service printed. */
export function logEntries(lines: string[]): Record<string, unknown>[] {
  return lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}
