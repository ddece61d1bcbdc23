import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestStack, type TestStack } from '../support/stack.js';

const CREATE =
  'mutation Create($title: String!) { createCourse(input: { title: $title, description: "d" }) { id title myRole createdBy } }';
const COURSE = 'query Course($id: ID!) { course(id: $id) { id title myRole members { userId role } } }';
const ADD = 'mutation Add($c: ID!, $u: ID!, $r: CourseRole!) { addCourseMember(courseId: $c, userId: $u, role: $r) { userId role } }';
const REMOVE = 'mutation Remove($c: ID!, $u: ID!) { removeCourseMember(courseId: $c, userId: $u) }';

/** SQL queries a subgraph has sent, from its /metrics. */
async function dbOperations(stack: TestStack, subgraph: string): Promise<number> {
  const text = await (await fetch(stack.services[subgraph]!.url.replace('/graphql', '/metrics'))).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('db_queries_total'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('courses and membership', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('lets a teacher create a course and hides it from a student who is not a member', async () => {
    const teacher = stack.user('t1');
    const student = stack.user('s1');
    const asTeacher = await stack.as(teacher, 'TEACHER');
    const asStudent = await stack.as(student, 'STUDENT');

    const created = await asTeacher<{ createCourse: { id: string; myRole: string; createdBy: string } }>(CREATE, {
      title: '  Algebra I  ',
    });
    const course = created.body.data!.createCourse;
    expect(course.myRole).toBe('TEACHER');
    expect(course.createdBy).toBe(teacher);

    const denied = await asStudent(COURSE, { id: course.id });
    expect(denied.body.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
    expect((denied.body.data as { course: unknown } | null)?.course ?? null).toBeNull();

    const added = await asTeacher<{ addCourseMember: { role: string } }>(ADD, { c: course.id, u: student, r: 'STUDENT' });
    expect(added.body.data?.addCourseMember.role).toBe('STUDENT');

    const seen = await asStudent<{ course: { title: string; myRole: string; members: { userId: string; role: string }[] } }>(COURSE, {
      id: course.id,
    });
    expect(seen.body.errors).toBeUndefined();
    expect(seen.body.data?.course.title).toBe('Algebra I');
    expect(seen.body.data?.course.myRole).toBe('STUDENT');
    expect(seen.body.data?.course.members.map((m) => m.role).sort()).toEqual(['STUDENT', 'TEACHER']);

    const removed = await asTeacher<{ removeCourseMember: boolean }>(REMOVE, { c: course.id, u: student });
    expect(removed.body.data?.removeCourseMember).toBe(true);
    const again = await asStudent(COURSE, { id: course.id });
    expect(again.body.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
  });

  it('lets an admin read any course, and refuses students who try to create or manage one', async () => {
    const asTeacher = await stack.as(stack.user('t2'), 'TEACHER');
    const { id } = (await asTeacher<{ createCourse: { id: string } }>(CREATE, { title: 'Biology' })).body.data!.createCourse;
    const asAdmin = await stack.as(stack.user('admin'), 'ADMIN');
    const adminView = await asAdmin<{ course: { title: string; myRole: string | null } }>(COURSE, { id });
    expect(adminView.body.data?.course.title).toBe('Biology');
    expect(adminView.body.data?.course.myRole).toBeNull();

    const student = stack.user('s2');
    const asStudent = await stack.as(student, 'STUDENT');
    expect((await asStudent(CREATE, { title: 'Mine' })).body.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
    await asTeacher(ADD, { c: id, u: student, r: 'STUDENT' });
    expect((await asStudent(ADD, { c: id, u: student, r: 'TEACHER' })).body.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
  });

  it('keeps at least one teacher in every course', async () => {
    const teacher = stack.user('t3');
    const asTeacher = await stack.as(teacher, 'TEACHER');
    const { id } = (await asTeacher<{ createCourse: { id: string } }>(CREATE, { title: 'Chemistry' })).body.data!.createCourse;
    expect((await asTeacher(REMOVE, { c: id, u: teacher })).body.errors?.[0]?.extensions?.['code']).toBe('CONFLICT');
    expect((await asTeacher(ADD, { c: id, u: teacher, r: 'STUDENT' })).body.errors?.[0]?.extensions?.['code']).toBe('CONFLICT');
  });

  it('answers bad input with BAD_USER_INPUT or NOT_FOUND, not a crash', async () => {
    const asTeacher = await stack.as(stack.user('t4'), 'TEACHER');
    expect((await asTeacher(COURSE, { id: 'not-a-uuid' })).body.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
    expect((await asTeacher(COURSE, { id: '00000000-0000-4000-8000-000000000000' })).body.errors?.[0]?.extensions?.['code']).toBe(
      'NOT_FOUND',
    );
    expect((await asTeacher(CREATE, { title: '   ' })).body.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
    expect((await asTeacher(CREATE, { title: 'x'.repeat(201) })).body.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
  });

  it('resolves course lists across subgraphs with a constant number of queries (no N+1)', async () => {
    const query = 'query Mine { myCourses { id title myRole members { userId role } myConversations { id } exams { id } } }';
    const subgraphs = ['rag', 'chat', 'exam'];
    const measure = async (courses: number) => {
      const teacher = stack.user(`n1-${courses}`);
      const asTeacher = await stack.as(teacher, 'TEACHER');
      for (let i = 0; i < courses; i++) {
        const { id } = (await asTeacher<{ createCourse: { id: string } }>(CREATE, { title: `Course ${i}` })).body.data!.createCourse;
        await asTeacher(ADD, { c: id, u: stack.user(`member-${courses}-${i}`), r: 'STUDENT' });
      }
      const before = await Promise.all(subgraphs.map((s) => dbOperations(stack, s)));
      const res = await asTeacher<{ myCourses: { members: unknown[] }[] }>(query);
      const afterOps = await Promise.all(subgraphs.map((s) => dbOperations(stack, s)));
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data?.myCourses).toHaveLength(courses);
      expect(res.body.data?.myCourses.every((c) => c.members.length === 2)).toBe(true);
      return Object.fromEntries(subgraphs.map((s, i) => [s, afterOps[i]! - before[i]!]));
    };
    const one = await measure(1);
    const twelve = await measure(12);
    // The counter must be counting: every subgraph the query reaches sends at least one query.
    for (const counts of [one, twelve]) for (const s of subgraphs) expect(counts[s]).toBeGreaterThan(0);
    // Queries per subgraph (rag, chat, exam): as many for 12 courses as for 1.
    expect(twelve).toEqual(one);
  });
});
