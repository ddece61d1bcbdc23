import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
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
  before(async () => {
    stack = await startTestStack();
  });
  after(() => stack?.stop());

  it('lets a teacher create a course and hides it from a student who is not a member', async () => {
    const teacher = stack.user('t1');
    const student = stack.user('s1');
    const asTeacher = await stack.as(teacher, 'TEACHER');
    const asStudent = await stack.as(student, 'STUDENT');

    const created = await asTeacher<{ createCourse: { id: string; myRole: string; createdBy: string } }>(CREATE, {
      title: '  Algebra I  ',
    });
    const course = created.body.data!.createCourse;
    assert.equal(course.myRole, 'TEACHER');
    assert.equal(course.createdBy, teacher);

    const denied = await asStudent(COURSE, { id: course.id });
    assert.equal(denied.body.errors?.[0]?.extensions?.['code'], 'FORBIDDEN');
    assert.equal((denied.body.data as { course: unknown } | null)?.course ?? null, null);

    const added = await asTeacher<{ addCourseMember: { role: string } }>(ADD, { c: course.id, u: student, r: 'STUDENT' });
    assert.equal(added.body.data?.addCourseMember.role, 'STUDENT');

    const seen = await asStudent<{ course: { title: string; myRole: string; members: { userId: string; role: string }[] } }>(COURSE, {
      id: course.id,
    });
    assert.equal(seen.body.errors, undefined);
    assert.equal(seen.body.data?.course.title, 'Algebra I');
    assert.equal(seen.body.data?.course.myRole, 'STUDENT');
    assert.deepEqual(seen.body.data?.course.members.map((m) => m.role).sort(), ['STUDENT', 'TEACHER']);

    const removed = await asTeacher<{ removeCourseMember: boolean }>(REMOVE, { c: course.id, u: student });
    assert.equal(removed.body.data?.removeCourseMember, true);
    const again = await asStudent(COURSE, { id: course.id });
    assert.equal(again.body.errors?.[0]?.extensions?.['code'], 'FORBIDDEN');
  });

  it('lets an admin read any course, and refuses students who try to create or manage one', async () => {
    const asTeacher = await stack.as(stack.user('t2'), 'TEACHER');
    const { id } = (await asTeacher<{ createCourse: { id: string } }>(CREATE, { title: 'Biology' })).body.data!.createCourse;
    const asAdmin = await stack.as(stack.user('admin'), 'ADMIN');
    const adminView = await asAdmin<{ course: { title: string; myRole: string | null } }>(COURSE, { id });
    assert.equal(adminView.body.data?.course.title, 'Biology');
    assert.equal(adminView.body.data?.course.myRole, null);

    const student = stack.user('s2');
    const asStudent = await stack.as(student, 'STUDENT');
    assert.equal((await asStudent(CREATE, { title: 'Mine' })).body.errors?.[0]?.extensions?.['code'], 'FORBIDDEN');
    await asTeacher(ADD, { c: id, u: student, r: 'STUDENT' });
    assert.equal((await asStudent(ADD, { c: id, u: student, r: 'TEACHER' })).body.errors?.[0]?.extensions?.['code'], 'FORBIDDEN');
  });

  it('keeps at least one teacher in every course', async () => {
    const teacher = stack.user('t3');
    const asTeacher = await stack.as(teacher, 'TEACHER');
    const { id } = (await asTeacher<{ createCourse: { id: string } }>(CREATE, { title: 'Chemistry' })).body.data!.createCourse;
    assert.equal((await asTeacher(REMOVE, { c: id, u: teacher })).body.errors?.[0]?.extensions?.['code'], 'CONFLICT');
    assert.equal((await asTeacher(ADD, { c: id, u: teacher, r: 'STUDENT' })).body.errors?.[0]?.extensions?.['code'], 'CONFLICT');
  });

  it('answers bad input with BAD_USER_INPUT or NOT_FOUND, not a crash', async () => {
    const asTeacher = await stack.as(stack.user('t4'), 'TEACHER');
    assert.equal((await asTeacher(COURSE, { id: 'not-a-uuid' })).body.errors?.[0]?.extensions?.['code'], 'BAD_USER_INPUT');
    assert.equal(
      (await asTeacher(COURSE, { id: '00000000-0000-4000-8000-000000000000' })).body.errors?.[0]?.extensions?.['code'],
      'NOT_FOUND',
    );
    assert.equal((await asTeacher(CREATE, { title: '   ' })).body.errors?.[0]?.extensions?.['code'], 'BAD_USER_INPUT');
    assert.equal((await asTeacher(CREATE, { title: 'x'.repeat(201) })).body.errors?.[0]?.extensions?.['code'], 'BAD_USER_INPUT');
  });

  it('resolves course lists across subgraphs with a constant number of queries (no N+1)', async () => {
    const query = 'query Mine { myCourses { id title myRole members { userId role } myConversations { id } exams { id } } }';
    const measure = async (courses: number) => {
      const teacher = stack.user(`n1-${courses}`);
      const asTeacher = await stack.as(teacher, 'TEACHER');
      for (let i = 0; i < courses; i++) {
        const { id } = (await asTeacher<{ createCourse: { id: string } }>(CREATE, { title: `Course ${i}` })).body.data!.createCourse;
        await asTeacher(ADD, { c: id, u: stack.user(`member-${courses}-${i}`), r: 'STUDENT' });
      }
      const before = await Promise.all(['rag', 'chat', 'exam'].map((s) => dbOperations(stack, s)));
      const res = await asTeacher<{ myCourses: { members: unknown[] }[] }>(query);
      const afterOps = await Promise.all(['rag', 'chat', 'exam'].map((s) => dbOperations(stack, s)));
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(res.body.data?.myCourses.length, courses);
      assert.ok(res.body.data?.myCourses.every((c) => c.members.length === 2));
      return afterOps.map((a, i) => a - before[i]!);
    };
    const one = await measure(1);
    const twelve = await measure(12);
    assert.deepEqual(twelve, one, `queries per subgraph (rag, chat, exam) for 12 courses ${twelve} vs 1 course ${one}`);
  });
});
