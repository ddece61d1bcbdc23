// Prisma Client on @prisma/adapter-pg (node-postgres pool) and the WASM query
// compiler: no native engine. Meant to connect through PgBouncer in transaction
// pooling mode (DATABASE_URL): the adapter only sends unnamed prepared
// statements, which are safe there, and interactive transactions keep their
// server connection for their whole duration.
//
// The client code is generated into lib/db/generated (gitignored) by
// `npm run db:generate`.
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { Counter, Gauge, type Registry } from 'prom-client';
import { Prisma, PrismaClient } from './generated/index.js';

export { Prisma, PrismaClient };
export { CourseRole, DocumentFormat, DocumentStatus, TaskKind, TaskStatus } from './generated/index.js';
export type {
  Chunk,
  ChunkEmbedding,
  ChunkTerm,
  Conversation,
  Course,
  CourseMember,
  Document,
  Exam,
  ExamAnswer,
  ExamAttempt,
  ExamQuestion,
  Message,
  MessageFeedback,
  Task,
} from './generated/index.js';

/** The subset of a pino logger used here (any pino Logger fits). */
export interface DbLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CreatePrismaOptions {
  /** Usually DATABASE_URL (through PgBouncer). */
  url: string;
  /** Where Prisma's warnings/errors (and queries, with logQueries) go. */
  log?: DbLogger;
  /** Log every query at debug level (with its duration, not its parameters). */
  logQueries?: boolean;
  /**
   * Connections in this process's pool. Through PgBouncer these are cheap
   * client connections; PgBouncer's default_pool_size caps the real ones.
   * Default 10.
   */
  max?: number;
  /** Give up acquiring a connection after this long. Default 10 s. */
  connectionTimeoutMillis?: number;
  /** Close pooled connections idle this long. Default 30 s. */
  idleTimeoutMillis?: number;
  /** Shown in pg_stat_activity (PgBouncer forwards it). */
  applicationName?: string;
  /**
   * Prometheus registry for the pool's metrics: db_pool_connections{state=
   * total|idle|waiting}, db_pool_max and db_pool_errors_total.
   */
  registry?: Registry;
}

interface PoolMetrics {
  pools: Set<pg.Pool>;
  errors: Counter;
}

// One set of metrics per registry, summed over the pools registered on it.
const poolMetrics = new WeakMap<Registry, PoolMetrics>();

function registerPoolMetrics(registry: Registry, pool: pg.Pool): Counter {
  let m = poolMetrics.get(registry);
  if (m === undefined) {
    const pools = new Set<pg.Pool>();
    new Gauge({
      name: 'db_pool_connections',
      help: "Connections in this process's database pool, by state (waiting = queued requests)",
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        let total = 0;
        let idle = 0;
        let waiting = 0;
        for (const p of pools) {
          if (p.ended) {
            pools.delete(p);
            continue;
          }
          total += p.totalCount;
          idle += p.idleCount;
          waiting += p.waitingCount;
        }
        this.set({ state: 'total' }, total);
        this.set({ state: 'idle' }, idle);
        this.set({ state: 'waiting' }, waiting);
      },
    });
    new Gauge({
      name: 'db_pool_max',
      help: "Largest size of this process's database pool",
      registers: [registry],
      collect() {
        let sum = 0;
        for (const p of pools) if (!p.ended) sum += p.options.max;
        this.set(sum);
      },
    });
    const errors = new Counter({
      name: 'db_pool_errors_total',
      help: 'Errors on idle or checked-out database connections',
      registers: [registry],
    });
    m = { pools, errors };
    poolMetrics.set(registry, m);
  }
  m.pools.add(pool);
  return m.errors;
}

export function createPrisma(options: CreatePrismaOptions): PrismaClient {
  const { log } = options;
  const max = options.max ?? 10;
  const pool = new pg.Pool({
    connectionString: options.url,
    max,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
    idleTimeoutMillis: options.idleTimeoutMillis ?? 30_000,
    ...(options.applicationName !== undefined ? { application_name: options.applicationName } : {}),
  });
  const errors = options.registry ? registerPoolMetrics(options.registry, pool) : undefined;
  const adapter = new PrismaPg(pool, {
    // $disconnect() ends the pool.
    disposeExternalPool: true,
    onPoolError: (err) => {
      errors?.inc();
      log?.warn({ err }, 'database pool: idle connection error');
    },
    onConnectionError: (err) => {
      errors?.inc();
      log?.warn({ err }, 'database connection error');
    },
  });

  const queries = options.registry ? queryCounter(options.registry) : undefined;
  if (log === undefined && queries === undefined) return withSql(new PrismaClient({ adapter }), pool, queries);

  const levels: Prisma.LogDefinition[] = [
    { emit: 'event', level: 'warn' },
    { emit: 'event', level: 'error' },
  ];
  if (options.logQueries || queries) levels.push({ emit: 'event', level: 'query' });
  const client = new PrismaClient({ adapter, log: levels });
  // With event-emitting log levels $on is typed per level; this client is then
  // handed out as a plain PrismaClient.
  const events = client as unknown as {
    $on(event: 'warn' | 'error', cb: (e: Prisma.LogEvent) => void): void;
    $on(event: 'query', cb: (e: Prisma.QueryEvent) => void): void;
  };
  events.$on('warn', (e) => log?.warn({ target: e.target }, `prisma: ${e.message}`));
  events.$on('error', (e) => log?.error({ target: e.target }, `prisma: ${e.message}`));
  if (options.logQueries || queries) {
    events.$on('query', (e) => {
      queries?.inc();
      if (options.logQueries) log?.debug({ query: e.query, durationMs: e.duration }, 'prisma query');
    });
  }
  return withSql(client, pool, queries);
}

/**
 * A statement straight on the pool Prisma's adapter uses, for the few statements on the hottest
 * paths (every answer of the tutor, every search). Prisma sends a raw query too, but first turns
 * it into a JSON request, compiles a plan for it in its WASM query compiler and interprets that
 * plan: ~0.28 ms of CPU for a one-row SELECT that node-postgres sends in ~0.07 ms (side by side on
 * the test database, 4,000 statements each). Same SQL (a `Prisma.sql` template, `$n` parameters),
 * same pool and PgBouncer, same db_queries_total; rows come back as node-postgres types them,
 * which for the columns these statements read (uuid, text, enums as text, int4, float8, boolean,
 * jsonb, timestamptz, uuid[]) are the values Prisma gives (lib/db/sql.int.test.ts). Outside
 * interactive transactions only: those hold a connection of their own.
 */
export interface Sql {
  <T>(statement: Prisma.Sql): Promise<T[]>;
}

const sqlByClient = new WeakMap<PrismaClient, Sql>();

function withSql(client: PrismaClient, pool: pg.Pool, queries: Counter | undefined): PrismaClient {
  sqlByClient.set(client, async <T>(statement: Prisma.Sql) => {
    queries?.inc();
    return (await pool.query({ text: statement.text, values: statement.values })).rows as T[];
  });
  return client;
}

/** The pool's direct statements of a client made by createPrisma. */
export function sqlOf(client: PrismaClient): Sql {
  const sql = sqlByClient.get(client);
  if (!sql) throw new Error('sqlOf: this client was not made by createPrisma');
  return sql;
}

const queryCounters = new WeakMap<Registry, Counter>();

/** db_queries_total: SQL statements sent, so that N+1 patterns show on a dashboard (and in tests). */
function queryCounter(registry: Registry): Counter {
  let counter = queryCounters.get(registry);
  if (!counter) {
    counter = new Counter({ name: 'db_queries_total', help: 'SQL statements sent to the database by Prisma', registers: [registry] });
    queryCounters.set(registry, counter);
  }
  return counter;
}
