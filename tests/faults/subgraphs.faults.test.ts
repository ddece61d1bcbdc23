/**
 * A subgraph stalled (SIGSTOP) or killed (SIGKILL): queries that touch only the others keep
 * working; one that needs it gets, within the router's per-subgraph timeout, the rest of its data
 * and a SERVICE_UNAVAILABLE error naming the subgraph (a course whose exams cannot be loaded is
 * still a course); the router's detailed /ready says which subgraph is down, and when it is back.
 * Requests past the router's MAX_IN_FLIGHT while others wait on the stalled subgraph are refused at
 * once (503 OVERLOADED), not queued behind them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestStack, type TestStack } from '../support/stack.js';
import { faultsInfra, sleep } from '../support/faults.js';

const EXAM_TIMEOUT_MS = 1500;
const MAX_IN_FLIGHT = 3;

interface ReadyView {
  status: string;
  subgraphs: Record<string, { status: string; reason?: string }>;
}

describe('a subgraph stalled or killed', () => {
  let stack: TestStack;
  let teacher: Awaited<ReturnType<TestStack['as']>>;
  let courseId: string;

  const ready = async () => {
    const res = await fetch(`${stack.services['router']!.opsUrl}/ready`);
    return { status: res.status, body: (await res.json()) as ReadyView };
  };
  const waitForSubgraph = async (name: string, status: 'up' | 'down', timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const view = await ready();
      if (view.body.subgraphs[name]?.status === status) return view;
      if (Date.now() > deadline) throw new Error(`${name} never ${status}: ${JSON.stringify(view.body)}`);
      await sleep(100);
    }
  };
  const inFlight = async () => {
    const text = await (await fetch(`${stack.services['router']!.opsUrl}/metrics`)).text();
    const value = /^graphql_requests_in_flight(?:\{[^}]*\})? (\d+)$/m.exec(text)?.[1];
    if (value === undefined) throw new Error(`no graphql_requests_in_flight in the router's /metrics`);
    return Number(value);
  };
  const courseWithExams = () =>
    teacher<{ course: { id: string; title: string; exams: { id: string }[] | null } }>(
      'query Course($id: ID!) { course(id: $id) { id title exams { id } } }',
      { id: courseId },
    );

  beforeAll(async () => {
    stack = await startTestStack({
      infra: faultsInfra(),
      router: {
        SUBGRAPH_EXAM_TIMEOUT_MS: String(EXAM_TIMEOUT_MS),
        SUBGRAPH_HEALTH_INTERVAL_MS: '300',
        MAX_IN_FLIGHT: String(MAX_IN_FLIGHT),
      },
    });
    teacher = await stack.as(stack.user('sg-faults'), 'TEACHER');
    const made = await teacher<{ createCourse: { id: string } }>(
      'mutation { createCourse(input: { title: "Still a course", description: "d" }) { id } }',
    );
    courseId = made.body.data!.createCourse.id;
  }, 180_000);

  afterAll(async () => {
    const exam = stack?.services['exam']?.child;
    if (exam?.pid && exam.exitCode === null && exam.signalCode === null) process.kill(exam.pid, 'SIGCONT');
    await stack?.stop();
  }, 120_000);

  it('answers the rest of a query within the timeout when the exam subgraph stalls, and says so in /ready', async () => {
    await waitForSubgraph('exam', 'up');
    const healthy = await courseWithExams();
    expect(healthy.body.errors).toBeUndefined();
    expect(healthy.body.data!.course.exams).toEqual([]);

    const pid = stack.services['exam']!.child.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      // Only rag: unaffected.
      const started = Date.now();
      const mine = await teacher<{ myCourses: { id: string }[] }>('{ myCourses { id title } }');
      expect(mine.body.errors).toBeUndefined();
      expect(mine.body.data!.myCourses.map((c) => c.id)).toContain(courseId);
      const ragOnly = Date.now() - started;

      // Needs exam: the course without its exams, in bounded time, with an error naming exam.
      const t0 = Date.now();
      const partial = await courseWithExams();
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(EXAM_TIMEOUT_MS - 50);
      expect(took).toBeLessThan(EXAM_TIMEOUT_MS + 8000);
      expect(partial.status).toBe(200);
      expect(partial.body.data!.course).toMatchObject({ id: courseId, title: 'Still a course', exams: null });
      expect(partial.body.errors).toEqual([
        expect.objectContaining({
          message: 'The exam service did not answer in time',
          extensions: expect.objectContaining({ code: 'SERVICE_UNAVAILABLE', subgraph: 'exam' }),
        }),
      ]);
      expect(partial.headers.get('retry-after')).toMatch(/^\d+$/);

      // MAX_IN_FLIGHT requests waiting on the stalled subgraph: one more is refused at once, not
      // queued behind them, and they still get their partial answers.
      const waiting = Array.from({ length: MAX_IN_FLIGHT }, () => courseWithExams());
      for (let i = 0; (await inFlight()) < MAX_IN_FLIGHT; i++) {
        if (i > 100) throw new Error(`the router never had ${MAX_IN_FLIGHT} requests in flight`);
        await sleep(20);
      }
      const t1 = Date.now();
      const refused = await teacher('{ myCourses { id } }');
      const refusedIn = Date.now() - t1;
      expect({ status: refused.status, body: refused.body }).toMatchObject({
        status: 503,
        body: { errors: [{ extensions: { code: 'SERVICE_UNAVAILABLE', reason: 'OVERLOADED', retryAfter: 1 } }] },
      });
      expect(refused.headers.get('retry-after')).toBe('1');
      const answers = await Promise.all(waiting);
      const waitedIn = Date.now() - t1;
      for (const answer of answers) {
        expect(answer.status).toBe(200);
        expect(answer.body.data!.course).toMatchObject({ id: courseId, exams: null });
      }
      console.log(
        `past MAX_IN_FLIGHT: refused in ${refusedIn} ms; the ${MAX_IN_FLIGHT} in flight answered ${waitedIn} ms after it was sent`,
      );

      // The router stays ready (it answers the rest) and names the subgraph that is down.
      const view = await waitForSubgraph('exam', 'down');
      expect(view.status).toBe(200);
      expect(view.body.subgraphs['rag']!.status).toBe('up');
      expect(view.body.subgraphs['exam']!.reason).toBeTruthy();
      console.log(`stalled exam: rag-only query ${ragOnly} ms, partial answer after ${took} ms`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitForSubgraph('exam', 'up');
    const back = await courseWithExams();
    expect(back.body.errors).toBeUndefined();
    expect(back.body.data!.course.exams).toEqual([]);
  }, 120_000);

  it('answers the rest at once when the exam subgraph is killed, and /ready names it', async () => {
    const exam = stack.services['exam']!;
    exam.child.kill('SIGKILL');
    await exam.exited;
    const t0 = Date.now();
    const partial = await courseWithExams();
    const took = Date.now() - t0;
    expect(took).toBeLessThan(EXAM_TIMEOUT_MS); // refused at once, not timed out
    expect(partial.status).toBe(200);
    expect(partial.body.data!.course).toMatchObject({ id: courseId, exams: null });
    expect(partial.body.errors).toEqual([
      expect.objectContaining({
        message: 'The exam service is unavailable',
        extensions: expect.objectContaining({ code: 'SERVICE_UNAVAILABLE', subgraph: 'exam' }),
      }),
    ]);
    // A mutation that only exam serves: nothing to answer, so 503 with Retry-After.
    const generate = await teacher(
      'mutation Gen($c: ID!) { generateExam(input: { courseId: $c, title: "x", questionCount: 3, types: [TRUE_FALSE] }) { id } }',
      { c: courseId },
    );
    expect({ status: generate.status, body: generate.body }).toMatchObject({ status: 503 });
    expect(generate.body.errors?.[0]?.extensions).toMatchObject({ code: 'SERVICE_UNAVAILABLE', subgraph: 'exam' });
    expect(generate.headers.get('retry-after')).toMatch(/^\d+$/);

    const view = await waitForSubgraph('exam', 'down');
    expect(view.status).toBe(200);
    expect(view.body.subgraphs['exam']!.reason).toMatch(/ECONNREFUSED|unavailable|refused/i);
    for (const other of ['rag', 'chat', 'tasks']) expect(view.body.subgraphs[other]!.status).toBe('up');
    console.log(`killed exam: partial answer after ${took} ms`);
  }, 120_000);
});
