// lib/db/migrate.ts against a real PostgreSQL (direct connection).
// Needs the test infra up: `npx tsx scripts/infra.ts up --profile test`.
// Run: npx jest lib/db/migrate.int.test.ts
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DEFAULT_MIGRATIONS_DIR, MigrationError, migrate, readMigrations } from './migrate.js';
import { testDbUrls, withDatabase } from '../../tests/support/db-urls.js';

const urls = testDbUrls();
const quiet = () => {};
const scratchDbs: string[] = [];
const tmpDirs: string[] = [];

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A new empty database on the test server, dropped after the tests. */
async function scratchDatabase(): Promise<string> {
  const name = `aiteacher_migrate_${randomBytes(6).toString('hex')}`;
  await withClient(withDatabase(urls.direct, 'postgres'), (c) => c.query(`CREATE DATABASE ${name}`));
  scratchDbs.push(name);
  return withDatabase(urls.direct, name);
}

function copyOfMigrations(): string {
  const dir = mkdtempSync(join(tmpdir(), 'aiteacher-migrations-'));
  tmpDirs.push(dir);
  cpSync(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

async function appliedRows(url: string) {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ migration_name: string; checksum: string; applied_steps_count: number; finished_at: Date | null }>(
      `SELECT migration_name, checksum, applied_steps_count, finished_at FROM "_prisma_migrations" ORDER BY migration_name`,
    );
    return rows;
  });
}

const local = readMigrations(DEFAULT_MIGRATIONS_DIR);

beforeAll(() => {
  // prisma/migrations has migrations.
  expect(local.length).toBeGreaterThanOrEqual(1);
});

afterAll(async () => {
  for (const name of scratchDbs) {
    await withClient(withDatabase(urls.direct, 'postgres'), (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => {});
  }
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('migrate', () => {
  it('the test database migrates, and a second run applies nothing', async () => {
    await migrate(urls.direct, quiet);
    const second = await migrate(urls.direct, quiet);
    expect(second.applied).toEqual([]);
    expect(second.alreadyApplied).toEqual(local.map((m) => m.name));
  });

  it('fresh database: applies all, records them the way Prisma does, then is idempotent', async () => {
    const url = await scratchDatabase();
    const first = await migrate(url, quiet);
    expect(first.applied).toEqual(local.map((m) => m.name));
    expect(first.alreadyApplied).toEqual([]);

    const rows = await appliedRows(url);
    expect(rows.map((r) => r.migration_name)).toEqual(local.map((m) => m.name));
    for (const [i, r] of rows.entries()) {
      // Prisma's checksum: sha256 hex of migration.sql.
      expect(r.checksum).toBe(local[i]?.checksum);
      expect(r.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(r.applied_steps_count).toBe(1);
      expect(r.finished_at).toBeInstanceOf(Date);
    }
    // The schema is really there.
    await withClient(url, async (c) => {
      const { rows: t } = await c.query(`SELECT to_regclass('"CourseMember"') IS NOT NULL AS ok`);
      expect(t[0]?.ok).toBe(true);
    });

    const second = await migrate(url, quiet);
    expect(second.applied).toHaveLength(0);
    expect(await appliedRows(url)).toHaveLength(local.length);
  });

  it('concurrent runs on a fresh database apply each migration exactly once', async () => {
    const url = await scratchDatabase();
    const results = await Promise.all([migrate(url, quiet), migrate(url, quiet), migrate(url, quiet)]);
    const appliedCount = results.reduce((n, r) => n + r.applied.length, 0);
    expect(appliedCount).toBe(local.length);
    expect(await appliedRows(url)).toHaveLength(local.length);
  });

  it("refuses to continue when an applied migration's file changed", async () => {
    const url = await scratchDatabase();
    await migrate(url, quiet);
    const before = await appliedRows(url);

    const dir = copyOfMigrations();
    const first = local[0]?.name ?? '';
    appendFileSync(join(dir, first, 'migration.sql'), '\n-- edited after it was applied\n');
    // A new migration behind it must not be applied either.
    mkdirSync(join(dir, '99999999999999_after_edit'));
    writeFileSync(join(dir, '99999999999999_after_edit', 'migration.sql'), `CREATE TABLE "ShouldNotExist" (id int);\n`);

    const refused = migrate(url, quiet, { migrationsDir: dir });
    await expect(refused).rejects.toBeInstanceOf(MigrationError);
    await expect(refused).rejects.toThrow(/changed after they were applied/);
    await expect(refused).rejects.toThrow(new RegExp(first));
    expect(await appliedRows(url)).toEqual(before);
    await withClient(url, async (c) => {
      const { rows } = await c.query(`SELECT to_regclass('"ShouldNotExist"') IS NULL AS absent`);
      expect(rows[0]?.absent).toBe(true);
    });
  });

  it('a failing migration is rolled back entirely and not recorded; a fixed one then applies', async () => {
    const url = await scratchDatabase();
    const dir = copyOfMigrations();
    const bad = join(dir, '99999999999999_bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'migration.sql'), `CREATE TABLE "Partial" (id int);\nSELECT no_such_function();\n`);

    await expect(migrate(url, quiet, { migrationsDir: dir })).rejects.toThrow(/99999999999999_bad failed/);
    const rows = await appliedRows(url);
    // The good ones before it are applied and recorded, the bad one is not.
    expect(rows.map((r) => r.migration_name)).toEqual(local.map((m) => m.name));
    await withClient(url, async (c) => {
      const { rows: t } = await c.query(`SELECT to_regclass('"Partial"') IS NULL AS absent`);
      expect(t[0]?.absent).toBe(true);
    });

    writeFileSync(join(bad, 'migration.sql'), `CREATE TABLE "Partial" (id int);\n`);
    const retry = await migrate(url, quiet, { migrationsDir: dir });
    expect(retry.applied).toEqual(['99999999999999_bad']);
  });

  it('waits for the lock held by another migrator, and gives up after lockTimeoutMs', async () => {
    const url = await scratchDatabase();
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(72707369)'); // Prisma Migrate's key
      await expect(migrate(url, quiet, { lockTimeoutMs: 300 })).rejects.toThrow(/could not take the migration lock/);
      const waiting = migrate(url, quiet, { lockTimeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 200));
      await holder.query('SELECT pg_advisory_unlock(72707369)');
      expect((await waiting).applied).toHaveLength(local.length);
    } finally {
      await holder.end();
    }
  });

  it('a Windows checkout (CRLF line endings) still matches the recorded checksum', async () => {
    const url = await scratchDatabase();
    await migrate(url, quiet);
    const dir = copyOfMigrations();
    for (const m of local) {
      const file = join(dir, m.name, 'migration.sql');
      writeFileSync(file, readFileSync(file, 'utf8').replace(/\r?\n/g, '\r\n'));
    }
    const again = await migrate(url, quiet, { migrationsDir: dir });
    expect(again.applied).toHaveLength(0);
  });
});
