// Applies the committed Prisma migrations (prisma/migrations/*/migration.sql)
// over a DIRECT PostgreSQL connection (never through PgBouncer in transaction
// mode: the advisory lock below is per session).
//
//   npx tsx lib/db/migrate.ts                    uses DIRECT_DATABASE_URL
//   npx tsx lib/db/migrate.ts --profile dev|test uses the local infra (scripts/infra.ts)
//
// Why not `prisma migrate deploy`: with the only engine that works offline
// (Prisma 6.19's WASM schema engine + @prisma/adapter-pg 6.19) it fails with
// "Column type 'name' could not be deserialized from the database"
// (prisma/prisma#27403). prisma.config.ts carries a shim that gets it past
// that, but deploy then still (a) does not refuse a migration edited after it
// was applied, (b) keeps the process alive ~10 s after finishing, and (c) gives
// up with P1002 when another deploy holds its lock for more than 10 s.
//
// Bookkeeping is Prisma's own: the `_prisma_migrations` table with Prisma's
// columns, checksum = sha256 hex of migration.sql, and the same advisory lock
// key (72707369), so `prisma migrate status` / `deploy` see these migrations as
// applied and never run concurrently with this.
//
// A new migration (needs the dev infra up; uses a throwaway shadow database):
//   npx prisma migrate diff --from-migrations prisma/migrations \
//     --to-schema-datamodel prisma/schema.prisma --script --output /tmp/next.sql
//   D=prisma/migrations/$(date -u +%Y%m%d%H%M%S)_<name>; mkdir "$D" && mv /tmp/next.sql "$D/migration.sql"
// (Use --output: the CLI prints "Loaded Prisma config..." on stdout. Create the
// folder only afterwards: Prisma rejects a migration folder without its file.
// `prisma migrate dev --create-only` writes the same file but then exits 1
// with "null pointer passed to rust".)
//
// Differences from Prisma: each migration runs in one transaction together with
// its bookkeeping row, so a failing migration leaves no trace and no "failed"
// row to resolve; fix it and run again. Statements that cannot run inside a
// transaction block (CREATE INDEX CONCURRENTLY, ...) are therefore not
// supported in migration files.
import { processEnv } from '../env.js';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

export const DEFAULT_MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../prisma/migrations');

/** Prisma Migrate's advisory lock key: we exclude each other. */
const PRISMA_ADVISORY_LOCK_KEY = 72707369;

const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export type MigrateLog = (message: string) => void;

export interface MigrateOptions {
  /** Folder holding `<name>/migration.sql` folders. Default: prisma/migrations. */
  migrationsDir?: string;
  /** How long to wait for another migrator holding the lock. Default 60 s. */
  lockTimeoutMs?: number;
}

export interface MigrateResult {
  /** Migrations applied by this run, in order. */
  applied: string[];
  /** Migrations that were already applied before this run. */
  alreadyApplied: string[];
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

interface LocalMigration {
  name: string;
  sql: string;
  checksum: string;
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Like Prisma, accept a file whose line endings changed (git autocrlf) as the
 * same migration.
 */
function checksumMatches(sql: string, checksum: string): boolean {
  const want = checksum.toLowerCase();
  if (sha256(sql) === want) return true;
  const lf = sql.replace(/\r\n/g, '\n');
  return sha256(lf) === want || sha256(lf.replace(/\n/g, '\r\n')) === want;
}

export function readMigrations(dir: string): LocalMigration[] {
  if (!existsSync(dir)) throw new MigrationError(`migrations folder ${dir} does not exist`);
  const lockFile = join(dir, 'migration_lock.toml');
  if (existsSync(lockFile)) {
    const provider = /provider\s*=\s*"([^"]+)"/.exec(readFileSync(lockFile, 'utf8'))?.[1];
    if (provider !== undefined && provider !== 'postgresql') {
      throw new MigrationError(`${lockFile} says provider "${provider}", expected "postgresql"`);
    }
  }
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'migration.sql')))
    .map((e) => e.name)
    .sort() // Prisma orders migrations by folder name (timestamp prefix)
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: sha256(sql) };
    });
}

function defaultLog(message: string): void {
  process.stderr.write(`[migrate] ${message}\n`);
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & { position?: string; detail?: string; hint?: string };
  return [e.message, e.detail && `DETAIL: ${e.detail}`, e.hint && `HINT: ${e.hint}`, e.position && `at character ${e.position}`]
    .filter(Boolean)
    .join('\n');
}

/**
 * Apply every migration in `migrationsDir` that the database has not applied
 * yet. Safe to run concurrently (advisory lock) and repeatedly (second run
 * applies nothing). Throws MigrationError, applying nothing, when an applied
 * migration's file was changed or when Prisma recorded a failed migration.
 */
export async function migrate(directUrl: string, log: MigrateLog = defaultLog, options: MigrateOptions = {}): Promise<MigrateResult> {
  const dir = options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR;
  const local = readMigrations(dir);
  const client = new pg.Client({ connectionString: directUrl, application_name: 'aiteacher-migrate', connectionTimeoutMillis: 10_000 });
  client.on('error', () => {}); // surfaced by the failing query instead
  await client.connect();
  try {
    await client.query(`SET lock_timeout = ${Math.max(1, Math.round(options.lockTimeoutMs ?? 60_000))}`);
    try {
      await client.query('SELECT pg_advisory_lock($1)', [PRISMA_ADVISORY_LOCK_KEY]);
    } catch (err) {
      throw new MigrationError(`could not take the migration lock (another migrator is running?): ${errorText(err)}`);
    }
    await client.query('SET lock_timeout = 0');
    try {
      return await migrateLocked(client, local, dir, log);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK_KEY]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

async function migrateLocked(client: pg.Client, local: LocalMigration[], dir: string, log: MigrateLog): Promise<MigrateResult> {
  await client.query(CREATE_MIGRATIONS_TABLE);
  const { rows } = await client.query<AppliedRow>(
    `SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at, migration_name`,
  );

  const failed = rows.filter((r) => r.finished_at === null && r.rolled_back_at === null);
  if (failed.length > 0) {
    const names = failed.map((r) => r.migration_name).join(', ');
    throw new MigrationError(
      `the database has failed migrations (${names}), recorded by prisma migrate. Repair the database, then mark them with ` +
        `\`prisma migrate resolve --rolled-back <name>\` (or --applied) before migrating again.`,
    );
  }

  const applied = new Map<string, AppliedRow>();
  for (const r of rows) if (r.finished_at !== null && r.rolled_back_at === null) applied.set(r.migration_name, r);

  const localNames = new Set(local.map((m) => m.name));
  const changed = local.filter((m) => {
    const row = applied.get(m.name);
    return row !== undefined && !checksumMatches(m.sql, row.checksum);
  });
  if (changed.length > 0) {
    throw new MigrationError(
      `migration file(s) changed after they were applied: ${changed.map((m) => m.name).join(', ')}. ` +
        `Applied migrations must never be edited: restore the original file(s) and put the change in a new migration.`,
    );
  }
  const unknown = [...applied.keys()].filter((n) => !localNames.has(n));
  if (unknown.length > 0) {
    log(`warning: the database has migrations that ${dir} does not: ${unknown.join(', ')} (newer code already migrated it?)`);
  }

  const alreadyApplied = local.filter((m) => applied.has(m.name)).map((m) => m.name);
  const pending = local.filter((m) => !applied.has(m.name));
  const done: string[] = [];
  for (const m of pending) {
    const started = Date.now();
    try {
      await client.query('BEGIN');
      const startedAt = (await client.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]?.now ?? new Date();
      await client.query(m.sql); // simple protocol: the file may hold many statements
      await client.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
         VALUES ($1, $2, clock_timestamp(), $3, NULL, NULL, $4, 1)`,
        [randomUUID(), m.checksum, m.name, startedAt],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw new MigrationError(`migration ${m.name} failed and was rolled back (nothing recorded): ${errorText(err)}`);
    }
    done.push(m.name);
    log(`applied ${m.name} (${Date.now() - started} ms)`);
  }
  log(
    done.length === 0
      ? `database is up to date (${alreadyApplied.length} migration(s) already applied)`
      : `applied ${done.length} migration(s), ${alreadyApplied.length} already applied`,
  );
  return { applied: done, alreadyApplied };
}

// ---------------------------------------------------------------------------
// CLI

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let url = processEnv()['DIRECT_DATABASE_URL'];
  let migrationsDir: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    const value = (flag: string) => (a === flag ? args[++i] : a.startsWith(`${flag}=`) ? a.slice(flag.length + 1) : undefined);
    const profile = value('--profile');
    const dirArg = value('--dir');
    if (profile !== undefined) {
      if (profile !== 'dev' && profile !== 'test') throw new Error(`unknown profile ${profile}`);
      // Local infra only: imported lazily so that production never loads it.
      const infraPath = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/infra.ts');
      const infra = (await import(pathToFileURL(infraPath).href)) as {
        infraEnv: (p: 'dev' | 'test') => { DIRECT_DATABASE_URL: string };
      };
      url = infra.infraEnv(profile).DIRECT_DATABASE_URL;
    } else if (dirArg !== undefined) {
      migrationsDir = resolve(dirArg);
    } else {
      throw new Error(`usage: tsx lib/db/migrate.ts [--profile dev|test] [--dir prisma/migrations] (unexpected ${a})`);
    }
  }
  if (!url) {
    throw new Error('DIRECT_DATABASE_URL is not set (a direct PostgreSQL URL, not PgBouncer); or pass --profile dev|test');
  }
  await migrate(url, defaultLog, migrationsDir === undefined ? {} : { migrationsDir });
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main().catch((err: unknown) => {
    defaultLog(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
