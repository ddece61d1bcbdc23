// Prisma (adapter-pg, WASM query compiler) through PgBouncer 1.18 in
// transaction pooling mode: many concurrent queries on fewer server
// connections must all succeed with correct results (no prepared-statement
// clashes: the adapter only uses unnamed statements).
//
// Needs the test infra up: `npx tsx scripts/infra.ts up --profile test`.
// Run: node --import tsx --test lib/db/pgbouncer.int.test.ts
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { Registry } from 'prom-client';
import { CourseRole, createPrisma, type PrismaClient } from './client.js';
import { migrate } from './migrate.js';
import { testDbUrls } from '../../tests/support/db-urls.js';

const urls = testDbUrls();
const runId = `pgb-test-${randomUUID()}`;
const registry = new Registry();
const warnings: string[] = [];
const log = {
  debug: () => {},
  warn: (_obj: object, msg: string) => void warnings.push(msg),
  error: (_obj: object, msg: string) => void warnings.push(msg),
};
let prisma: PrismaClient;

before(async () => {
  await migrate(urls.direct, () => {});
  // More client connections (50) than PgBouncer's default_pool_size (20), so
  // server connections are shared between transactions of different clients.
  prisma = createPrisma({ url: urls.pooled, max: 50, registry, log });
});

after(async () => {
  await prisma?.course.deleteMany({ where: { createdBy: runId } }).catch(() => {});
  await prisma?.$disconnect();
});

describe('Prisma through PgBouncer (transaction pooling)', () => {
  test('really goes through PgBouncer in transaction mode', async () => {
    // PgBouncer's admin console answers SHOW CONFIG on the special `pgbouncer` database.
    const admin = new URL(urls.pooled);
    admin.pathname = '/pgbouncer';
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    try {
      // Simple protocol only on the admin console.
      const res = await client.query({ text: 'SHOW CONFIG', rowMode: 'array' });
      const poolMode = res.rows.find((r: unknown[]) => r[0] === 'pool_mode')?.[1];
      assert.equal(poolMode, 'transaction');
    } finally {
      await client.end();
    }
  });

  test('200 concurrent creates and parameterised findMany all succeed with correct results', async () => {
    const title = `course ${runId}`;
    const course = await prisma.course.create({ data: { title, createdBy: runId } });

    const roleOf = (i: number) => (i % 4 === 0 ? CourseRole.TEACHER : CourseRole.STUDENT);
    const ops = Array.from({ length: 200 }, async (_, i) => {
      if (i % 2 === 0) {
        const m = await prisma.courseMember.create({
          data: { courseId: course.id, userId: `user-${i}`, role: roleOf(i) },
        });
        assert.equal(m.userId, `user-${i}`);
        assert.equal(m.role, roleOf(i));
        return 'create' as const;
      }
      const role = i % 3 === 0 ? CourseRole.TEACHER : CourseRole.STUDENT;
      const found = await prisma.course.findMany({
        where: { createdBy: runId, title },
        include: { members: { where: { role }, orderBy: { userId: 'asc' } } },
      });
      assert.equal(found.length, 1);
      assert.equal(found[0]?.id, course.id);
      for (const m of found[0]?.members ?? []) {
        assert.equal(m.role, role);
        assert.equal(m.courseId, course.id);
      }
      assert.ok((found[0]?.members.length ?? 0) <= 50);
      return 'find' as const;
    });

    const results = await Promise.allSettled(ops);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.deepEqual(
      failures.map((f) => String(f.reason)),
      [],
      `${failures.length} of 200 operations failed`,
    );
    assert.equal(results.length, 200);

    const [teachers, students, total] = await Promise.all([
      prisma.courseMember.count({ where: { courseId: course.id, role: CourseRole.TEACHER } }),
      prisma.courseMember.count({ where: { courseId: course.id, role: CourseRole.STUDENT } }),
      prisma.courseMember.count({ where: { courseId: course.id } }),
    ]);
    assert.equal(teachers, 50);
    assert.equal(students, 50);
    assert.equal(total, 100);

    // The pool really ran wide, within its bounds, without connection errors.
    const metrics = await registry.getMetricsAsJSON();
    const value = (name: string, state?: string) =>
      metrics.find((m) => m.name === name)?.values.find((v) => state === undefined || v.labels['state'] === state)?.value;
    assert.equal(value('db_pool_max'), 50);
    const open = value('db_pool_connections', 'total') ?? 0;
    assert.ok(open > 10 && open <= 50, `pool had ${open} connections`);
    assert.equal(value('db_pool_errors_total'), 0);
    assert.deepEqual(warnings, []);

    // And PostgreSQL itself (direct connection) agrees.
    const direct = new pg.Client({ connectionString: urls.direct });
    await direct.connect();
    try {
      const { rows } = await direct.query<{ n: string }>(`SELECT count(*) AS n FROM "CourseMember" WHERE "courseId" = $1`, [course.id]);
      assert.equal(Number(rows[0]?.n), 100);
    } finally {
      await direct.end();
    }
  });

  test('concurrent interactive transactions commit or roll back as a whole', async () => {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        prisma.$transaction(async (tx) => {
          const c = await tx.course.create({ data: { title: `tx ${i}`, createdBy: runId } });
          await tx.courseMember.create({ data: { courseId: c.id, userId: `tx-user-${i}`, role: CourseRole.STUDENT } });
          if (i % 2 === 1) throw new Error(`rollback ${i}`);
          return c.id;
        }),
      ),
    );
    const committed = outcomes.filter((o) => o.status === 'fulfilled').length;
    const rolledBack = outcomes.filter((o) => o.status === 'rejected' && String(o.reason).includes('rollback')).length;
    assert.equal(committed, 20);
    assert.equal(rolledBack, 20);
    const kept = await prisma.course.findMany({ where: { createdBy: runId, title: { startsWith: 'tx ' } }, include: { members: true } });
    assert.equal(kept.length, 20);
    for (const c of kept) {
      assert.equal(Number(c.title.slice(3)) % 2, 0);
      assert.equal(c.members.length, 1);
    }
  });
});
