// lib/db/migrate.ts against a real PostgreSQL (direct connection).
// Needs the test infra up: `npx tsx scripts/infra.ts up --profile test`.
// Run: node --import tsx --test lib/db/migrate.int.test.ts
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
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

before(() => {
  assert.ok(local.length >= 1, 'prisma/migrations has migrations');
});

after(async () => {
  for (const name of scratchDbs) {
    await withClient(withDatabase(urls.direct, 'postgres'), (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => {});
  }
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('migrate', () => {
  test('the test database migrates, and a second run applies nothing', async () => {
    await migrate(urls.direct, quiet);
    const second = await migrate(urls.direct, quiet);
    assert.deepEqual(second.applied, []);
    assert.deepEqual(
      second.alreadyApplied,
      local.map((m) => m.name),
    );
  });

  test('fresh database: applies all, records them the way Prisma does, then is idempotent', async () => {
    const url = await scratchDatabase();
    const first = await migrate(url, quiet);
    assert.deepEqual(
      first.applied,
      local.map((m) => m.name),
    );
    assert.deepEqual(first.alreadyApplied, []);

    const rows = await appliedRows(url);
    assert.deepEqual(
      rows.map((r) => r.migration_name),
      local.map((m) => m.name),
    );
    for (const [i, r] of rows.entries()) {
      // Prisma's checksum: sha256 hex of migration.sql.
      assert.equal(r.checksum, local[i]?.checksum);
      assert.match(r.checksum, /^[0-9a-f]{64}$/);
      assert.equal(r.applied_steps_count, 1);
      assert.ok(r.finished_at instanceof Date);
    }
    // The schema is really there.
    await withClient(url, async (c) => {
      const { rows: t } = await c.query(`SELECT to_regclass('"CourseMember"') IS NOT NULL AS ok`);
      assert.equal(t[0]?.ok, true);
    });

    const second = await migrate(url, quiet);
    assert.equal(second.applied.length, 0);
    assert.equal((await appliedRows(url)).length, local.length);
  });

  test('concurrent runs on a fresh database apply each migration exactly once', async () => {
    const url = await scratchDatabase();
    const results = await Promise.all([migrate(url, quiet), migrate(url, quiet), migrate(url, quiet)]);
    const appliedCount = results.reduce((n, r) => n + r.applied.length, 0);
    assert.equal(appliedCount, local.length);
    assert.equal((await appliedRows(url)).length, local.length);
  });

  test("refuses to continue when an applied migration's file changed", async () => {
    const url = await scratchDatabase();
    await migrate(url, quiet);
    const before = await appliedRows(url);

    const dir = copyOfMigrations();
    const first = local[0]?.name ?? '';
    appendFileSync(join(dir, first, 'migration.sql'), '\n-- edited after it was applied\n');
    // A new migration behind it must not be applied either.
    mkdirSync(join(dir, '99999999999999_after_edit'));
    writeFileSync(join(dir, '99999999999999_after_edit', 'migration.sql'), `CREATE TABLE "ShouldNotExist" (id int);\n`);

    await assert.rejects(migrate(url, quiet, { migrationsDir: dir }), (err: unknown) => {
      assert.ok(err instanceof MigrationError);
      assert.match(err.message, /changed after they were applied/);
      assert.match(err.message, new RegExp(first));
      return true;
    });
    assert.deepEqual(await appliedRows(url), before);
    await withClient(url, async (c) => {
      const { rows } = await c.query(`SELECT to_regclass('"ShouldNotExist"') IS NULL AS absent`);
      assert.equal(rows[0]?.absent, true);
    });
  });

  test('a failing migration is rolled back entirely and not recorded; a fixed one then applies', async () => {
    const url = await scratchDatabase();
    const dir = copyOfMigrations();
    const bad = join(dir, '99999999999999_bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'migration.sql'), `CREATE TABLE "Partial" (id int);\nSELECT no_such_function();\n`);

    await assert.rejects(migrate(url, quiet, { migrationsDir: dir }), /99999999999999_bad failed/);
    const rows = await appliedRows(url);
    // The good ones before it are applied and recorded, the bad one is not.
    assert.deepEqual(
      rows.map((r) => r.migration_name),
      local.map((m) => m.name),
    );
    await withClient(url, async (c) => {
      const { rows: t } = await c.query(`SELECT to_regclass('"Partial"') IS NULL AS absent`);
      assert.equal(t[0]?.absent, true);
    });

    writeFileSync(join(bad, 'migration.sql'), `CREATE TABLE "Partial" (id int);\n`);
    const retry = await migrate(url, quiet, { migrationsDir: dir });
    assert.deepEqual(retry.applied, ['99999999999999_bad']);
  });

  test('waits for the lock held by another migrator, and gives up after lockTimeoutMs', async () => {
    const url = await scratchDatabase();
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(72707369)'); // Prisma Migrate's key
      await assert.rejects(migrate(url, quiet, { lockTimeoutMs: 300 }), /could not take the migration lock/);
      const waiting = migrate(url, quiet, { lockTimeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 200));
      await holder.query('SELECT pg_advisory_unlock(72707369)');
      assert.equal((await waiting).applied.length, local.length);
    } finally {
      await holder.end();
    }
  });

  test('a Windows checkout (CRLF line endings) still matches the recorded checksum', async () => {
    const url = await scratchDatabase();
    await migrate(url, quiet);
    const dir = copyOfMigrations();
    for (const m of local) {
      const file = join(dir, m.name, 'migration.sql');
      writeFileSync(file, readFileSync(file, 'utf8').replace(/\r?\n/g, '\r\n'));
    }
    const again = await migrate(url, quiet, { migrationsDir: dir });
    assert.equal(again.applied.length, 0);
  });
});
