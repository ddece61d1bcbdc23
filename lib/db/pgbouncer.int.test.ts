// Prisma (adapter-pg, WASM query compiler) through PgBouncer 1.18 in
// transaction pooling mode: many concurrent queries on fewer server
// connections must all succeed with correct results (no prepared-statement
// clashes: the adapter only uses unnamed statements).
//
// Needs the test infra up: `npx tsx scripts/infra.ts up --profile test`.
// Run: npx jest lib/db/pgbouncer.int.test.ts
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
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

beforeAll(async () => {
  await migrate(urls.direct, () => {});
  // More client connections (50) than PgBouncer's default_pool_size (20), so
  // server connections are shared between transactions of different clients.
  prisma = createPrisma({ url: urls.pooled, max: 50, registry, log });
});

afterAll(async () => {
  await prisma?.course.deleteMany({ where: { createdBy: runId } }).catch(() => {});
  await prisma?.$disconnect();
});

describe('Prisma through PgBouncer (transaction pooling)', () => {
  it('really goes through PgBouncer in transaction mode', async () => {
    // PgBouncer's admin console answers SHOW CONFIG on the special `pgbouncer` database.
    const admin = new URL(urls.pooled);
    admin.pathname = '/pgbouncer';
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    try {
      // Simple protocol only on the admin console.
      const res = await client.query({ text: 'SHOW CONFIG', rowMode: 'array' });
      const poolMode = res.rows.find((r: unknown[]) => r[0] === 'pool_mode')?.[1];
      expect(poolMode).toBe('transaction');
    } finally {
      await client.end();
    }
  });

  it('200 concurrent creates and parameterised findMany all succeed with correct results', async () => {
    const title = `course ${runId}`;
    const course = await prisma.course.create({ data: { title, createdBy: runId } });

    const roleOf = (i: number) => (i % 4 === 0 ? CourseRole.TEACHER : CourseRole.STUDENT);
    const ops = Array.from({ length: 200 }, async (_, i) => {
      if (i % 2 === 0) {
        const m = await prisma.courseMember.create({
          data: { courseId: course.id, userId: `user-${i}`, role: roleOf(i) },
        });
        expect(m.userId).toBe(`user-${i}`);
        expect(m.role).toBe(roleOf(i));
        return 'create' as const;
      }
      const role = i % 3 === 0 ? CourseRole.TEACHER : CourseRole.STUDENT;
      const found = await prisma.course.findMany({
        where: { createdBy: runId, title },
        include: { members: { where: { role }, orderBy: { userId: 'asc' } } },
      });
      expect(found).toHaveLength(1);
      expect(found[0]?.id).toBe(course.id);
      for (const m of found[0]?.members ?? []) {
        expect(m.role).toBe(role);
        expect(m.courseId).toBe(course.id);
      }
      expect(found[0]?.members.length ?? 0).toBeLessThanOrEqual(50);
      return 'find' as const;
    });

    const results = await Promise.allSettled(ops);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    // Lists the reason of every one of the 200 operations that failed.
    expect(failures.map((f) => String(f.reason))).toEqual([]);
    expect(results).toHaveLength(200);

    const [teachers, students, total] = await Promise.all([
      prisma.courseMember.count({ where: { courseId: course.id, role: CourseRole.TEACHER } }),
      prisma.courseMember.count({ where: { courseId: course.id, role: CourseRole.STUDENT } }),
      prisma.courseMember.count({ where: { courseId: course.id } }),
    ]);
    expect(teachers).toBe(50);
    expect(students).toBe(50);
    expect(total).toBe(100);

    // The pool really ran wide, within its bounds, without connection errors.
    const metrics = await registry.getMetricsAsJSON();
    const value = (name: string, state?: string) =>
      metrics.find((m) => m.name === name)?.values.find((v) => state === undefined || v.labels['state'] === state)?.value;
    expect(value('db_pool_max')).toBe(50);
    const open = value('db_pool_connections', 'total') ?? 0;
    expect(open).toBeGreaterThan(10);
    expect(open).toBeLessThanOrEqual(50);
    expect(value('db_pool_errors_total')).toBe(0);
    expect(warnings).toEqual([]);

    // And PostgreSQL itself (direct connection) agrees.
    const direct = new pg.Client({ connectionString: urls.direct });
    await direct.connect();
    try {
      const { rows } = await direct.query<{ n: string }>(`SELECT count(*) AS n FROM "CourseMember" WHERE "courseId" = $1`, [course.id]);
      expect(Number(rows[0]?.n)).toBe(100);
    } finally {
      await direct.end();
    }
  });

  it('concurrent interactive transactions commit or roll back as a whole', async () => {
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
    expect(committed).toBe(20);
    expect(rolledBack).toBe(20);
    const kept = await prisma.course.findMany({ where: { createdBy: runId, title: { startsWith: 'tx ' } }, include: { members: true } });
    expect(kept).toHaveLength(20);
    for (const c of kept) {
      expect(Number(c.title.slice(3)) % 2).toBe(0);
      expect(c.members).toHaveLength(1);
    }
  });
});
