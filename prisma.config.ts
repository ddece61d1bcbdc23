// Prisma CLI configuration (Prisma 6.19), built to work with nothing but the
// npm registry: Prisma's engine download server is not reachable from this
// project's machines.
//
// - `engine: "js"` makes schema commands (`migrate diff`, `migrate status`,
//   `migrate dev --create-only`, `db pull`) use the WASM schema engine bundled
//   in the `prisma` package instead of the native schema-engine binary that
//   Prisma would otherwise download.
// - The generator in schema.prisma sets `engineType = "client"`: the client
//   runs on the WASM query compiler + `@prisma/adapter-pg`, so the CLI does not
//   try to download the native query-engine library either.
// - The adapter connects straight to PostgreSQL (DIRECT_DATABASE_URL), never
//   through PgBouncer. It is only instantiated by commands that talk to a
//   database; even `migrate diff --from-empty` does, so run `infra:up` first.
//
// Applying migrations is done by lib/db/migrate.ts (`npm run db:migrate`), not
// by `prisma migrate deploy`: see the comment at the top of that file.
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { defineConfig } from 'prisma/config';

const DEFAULT_DIRECT_URL = 'postgresql://aiteacher:aiteacher@127.0.0.1:55432/aiteacher';

// The CLI reads the generator's engineType only if the whole schema resolves,
// including the datasource's `url = env("DIRECT_DATABASE_URL")` (and Prisma 6
// rejects a datasource without `url`). When the variable is missing it
// silently falls back to the native "library" engine and tries to download it
// (`request to https://binaries.prisma.sh/... failed`). So it gets the same
// default as the adapter below (the CLI only prints it; it connects through
// the adapter).
process.env.DIRECT_DATABASE_URL ??= DEFAULT_DIRECT_URL;
// Do not phone home (version check / telemetry): it cannot succeed here.
process.env.CHECKPOINT_DISABLE ??= '1';

// Workaround for prisma/prisma#27403: @prisma/adapter-pg 6.19 has no mapping
// for PostgreSQL's `name` (oid 19) and `"char"` (oid 18) column types, which
// the schema engine's catalog queries return ("Column type 'name' could not be
// deserialized from the database"). Both are plain text on the wire, so they
// are reported as `text` (oid 25). Only this CLI config uses it.
const TEXT_OID = 25;
const TEXTLIKE_OIDS = new Set([18, 19]);

type QueryFn = (...args: unknown[]) => unknown;

function remapFields(result: unknown): void {
  const fields = (result as { fields?: { dataTypeID: number }[] } | null)?.fields;
  for (const f of fields ?? []) if (TEXTLIKE_OIDS.has(f.dataTypeID)) f.dataTypeID = TEXT_OID;
}

class NameAsTextClient extends pg.Client {
  constructor(config?: string | pg.ClientConfig) {
    super(config);
    const original = (this.query as QueryFn).bind(this);
    (this as unknown as { query: QueryFn }).query = (...args: unknown[]) => {
      const cb = args.at(-1);
      if (typeof cb === 'function') {
        args[args.length - 1] = (err: unknown, res: unknown) => {
          if (!err) remapFields(res);
          (cb as QueryFn)(err, res);
        };
        return original(...args);
      }
      const out = original(...args);
      if (out instanceof Promise) return out.then((res: unknown) => (remapFields(res), res));
      return out;
    };
  }
}

function poolConfig(url: string): pg.PoolConfig {
  // Discrete fields, not `connectionString`: the adapter derives the shadow
  // database's config as `{ ...config, database }`, and a connectionString
  // would override that `database` (migrate dev would then replay the
  // migrations on the real database).
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)),
    // The schema engine takes pg_advisory_lock() and never unlocks: it relies
    // on the session ending. One connection, closed soon after use, so the
    // lock is released as soon as the command is done.
    max: 1,
    idleTimeoutMillis: 300,
    allowExitOnIdle: true,
    Client: NameAsTextClient as unknown as pg.PoolConfig['Client'],
  };
}

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  async adapter() {
    return new PrismaPg(poolConfig(process.env.DIRECT_DATABASE_URL ?? DEFAULT_DIRECT_URL));
  },
});
