/**
 * PgBouncer, then PostgreSQL, restarted under a steady load of queries and mutations through the
 * router. While the database cannot be reached a client gets SERVICE_UNAVAILABLE with Retry-After
 * (HTTP 503 when nothing could be answered), never an internal error and never a message that names
 * our code, files or libraries; once it is back every service recovers by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestStack, type TestStack } from '../support/stack.js';
import { faultsInfra, INTERNALS, restartInfra, signalService, sleep } from '../support/faults.js';

interface Outcome {
  at: number;
  ms: number;
  status: number;
  ok: boolean;
  codes: string[];
  messages: string[];
  retryAfter: string | null;
  transportError?: string;
}

const QUERIES = [
  { query: 'query Mine { myCourses { id title } }' },
  { query: 'query One($id: ID!) { course(id: $id) { id title documents { id } } }', needsCourse: true },
  { query: 'mutation Make($title: String!) { createCourse(input: { title: $title, description: "d" }) { id } }', mutation: true },
];

describe('database outages under load', () => {
  let stack: TestStack;
  let token: string;
  let courseId: string;

  beforeAll(async () => {
    stack = await startTestStack({
      infra: faultsInfra(),
      // Generous per-user limits: this test measures outages, not rate limiting.
      router: { RATE_LIMIT_TEACHER: '1000000' },
    });
    token = await stack.token(stack.user('db-faults'), 'TEACHER');
    const made = await stack.gql<{ createCourse: { id: string } }>(QUERIES[2]!.query, { title: 'Faults' }, { token });
    courseId = made.body.data!.createCourse.id;
  }, 180_000);

  afterAll(async () => {
    await restartInfra(); // whatever a failed test left down
    await stack?.stop();
  }, 120_000);

  /** Clients that send one request after another until stopped, recording every outcome. */
  function load(clients: number) {
    const outcomes: Outcome[] = [];
    let running = true;
    const loops = Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; running; i++) {
        const q = QUERIES[(c + i) % QUERIES.length]!;
        const at = Date.now();
        try {
          const res = await fetch(stack.routerUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify({ query: q.query, variables: q.needsCourse ? { id: courseId } : q.mutation ? { title: `t${i}` } : {} }),
          });
          const body = (await res.json()) as { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] };
          outcomes.push({
            at,
            ms: Date.now() - at,
            status: res.status,
            ok: res.status === 200 && !body.errors?.length,
            codes: body.errors?.map((e) => e.extensions?.code ?? 'NONE') ?? [],
            messages: body.errors?.map((e) => e.message) ?? [],
            retryAfter: res.headers.get('retry-after'),
          });
        } catch (err) {
          outcomes.push({
            at,
            ms: Date.now() - at,
            status: 0,
            ok: false,
            codes: [],
            messages: [],
            retryAfter: null,
            transportError: String(err),
          });
          await sleep(50);
        }
      }
    });
    return {
      outcomes,
      stop: async () => {
        running = false;
        await Promise.all(loops);
      },
    };
  }

  function check(outcomes: Outcome[], from: number, to: number) {
    const window = outcomes.filter((o) => o.at >= from && o.at < to);
    const failed = window.filter((o) => !o.ok);
    // Every failure is a clean, retryable refusal.
    for (const o of failed) {
      expect(o.transportError).toBeUndefined();
      expect(o.status).not.toBe(500);
      expect(o.codes.length).toBeGreaterThan(0);
      for (const code of o.codes) expect(code).toBe('SERVICE_UNAVAILABLE');
      for (const message of o.messages) expect(message).not.toMatch(INTERNALS);
      expect(o.retryAfter).toMatch(/^\d+$/);
      expect([200, 503]).toContain(o.status);
    }
    return { total: window.length, failed: failed.length, worst: Math.max(0, ...window.map((o) => o.ms)) };
  }

  /** Time from `since` to the first success sent after it, and that nothing failed after that one. */
  function recovery(outcomes: Outcome[], since: number, until: number) {
    // Sent after `since`, answered before the next fault.
    const after = outcomes.filter((o) => o.at >= since && o.at + o.ms < until).sort((a, b) => a.at - b.at);
    const first = after.find((o) => o.ok);
    expect(first).toBeDefined();
    // Sent a second after the first success, nothing fails any more.
    const later = after.filter((o) => o.at > first!.at + first!.ms + 1000);
    expect(later.length).toBeGreaterThan(0);
    expect(later.filter((o) => !o.ok)).toEqual([]);
    return first!.at + first!.ms - since;
  }

  it('answers SERVICE_UNAVAILABLE with Retry-After while PgBouncer and then PostgreSQL restart, and recovers by itself', async () => {
    const run = load(6);
    try {
      await sleep(1500);
      const figures: Record<string, unknown> = {};

      // PgBouncer: killed (immediate shutdown), down 3 s, started again.
      const bouncerDown = Date.now();
      await signalService('pgbouncer', 'SIGTERM');
      await sleep(3000);
      await restartInfra();
      const bouncerBack = Date.now();
      await sleep(5000);

      // PostgreSQL: fast shutdown, down 3 s, started again (PgBouncer stays up and retries its logins).
      const pgDown = Date.now();
      await signalService('postgres', 'SIGINT');
      await sleep(3000);
      await restartInfra();
      const pgBack = Date.now();
      await sleep(6000);
      await run.stop();

      const outcomes = run.outcomes;
      // Everything answered before the first fault succeeded (those in flight at the fault may not).
      expect(outcomes.filter((o) => o.at + o.ms < bouncerDown && !o.ok)).toEqual([]);
      const bouncerWindow = check(outcomes, bouncerDown, bouncerBack);
      figures['pgbouncer down'] = { ...bouncerWindow, recoveryMs: recovery(outcomes, bouncerBack, pgDown) };
      const pgWindow = check(outcomes, pgDown, pgBack);
      figures['postgres down'] = { ...pgWindow, recoveryMs: recovery(outcomes, pgBack, Date.now()) };
      check(outcomes, 0, Date.now());
      // The outage was seen: PgBouncer's absence refuses connections at once.
      expect(bouncerWindow.failed).toBeGreaterThan(0);
      console.log(`database outages: ${JSON.stringify(figures)}`);
    } finally {
      await run.stop();
    }
  }, 180_000);
});
