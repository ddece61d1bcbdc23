import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bullConnection } from '../../lib/redis.js';
import { createTaskEventStream, type TaskEvent } from '../../lib/tasks/events.js';
import { stopService, type ServiceProcess } from '../../scripts/lib/stack.js';
import { testInfra } from '../support/infra.js';
import { TASK_FIELDS, createCourse, ingest, upload, waitForTask, type TaskView } from '../support/ingest.js';
import { makeLargePdf } from '../support/pdf-fixtures.js';
import { startExtraRouter, startTestStack, type TestStack } from '../support/stack.js';
import { subscribe, type Subscription } from '../support/ws.js';

const TASK_SUB = `subscription($id: ID!) { taskUpdated(id: $id) { ${TASK_FIELDS} } }`;
const MY_TASKS = 'subscription { myTaskUpdated { id } }';
/** Small, so the per-user connection limit is cheap to reach. */
const MAX_CONNECTIONS_PER_USER = 3;
const RANK: Record<string, number> = { ACCEPTED: 0, RUNNING: 1, COMPLETED: 2, FAILED: 2, CANCELLED: 2 };

/** Every task event published on the stream while it is open (what the routers listen to). */
async function recordTaskEvents() {
  const events: TaskEvent[] = [];
  const errors: Error[] = [];
  const stream = await createTaskEventStream(bullConnection(testInfra().REDIS_URL), (err) => errors.push(err));
  stream.on((event) => events.push(event));
  return {
    events,
    errors,
    /** Waits until the task's final event has been read (a subscriber may see the final state before its event). */
    async final(taskId: string, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!events.some((e) => e.taskId === taskId && RANK[e.status] === 2)) {
        if (Date.now() > deadline) throw new Error(`no final event for task ${taskId} in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return events.filter((e) => e.taskId === taskId);
    },
    close: () => stream.close(),
  };
}

/**
 * A subscriber's messages are the task's published states, in the order they were published: each
 * message is a state some event announced (a router reads the task when an event arrives, and a state
 * is written before it is announced), no later than the next message's, and no lifecycle stage that
 * came after the first message is skipped. Several events during one read coalesce into one message,
 * so progress steps may be skipped, never reordered.
 */
function expectPublishedInOrder(
  label: string,
  sub: Subscription<{ taskUpdated: TaskView }>,
  published: TaskEvent[],
  { toTheEnd }: { toTheEnd: boolean },
) {
  const states = sub.messages.map((m) => ({ status: m.data!.taskUpdated.status, progress: m.data!.taskUpdated.progress }));
  expect({ label, received: states.length > 0 }).toEqual({ label, received: true });
  let at = -1;
  const unmatched: unknown[] = [];
  states.forEach((s, i) => {
    const prev = states[i - 1];
    // The same state read twice (other fields, such as the document's, may differ): the same event.
    if (prev && prev.status === s.status && prev.progress === s.progress) return;
    const found = published.findIndex((e, j) => j > at && e.status === s.status && e.progress === s.progress);
    if (found < 0) unmatched.push({ message: i, ...s });
    else at = found;
  });
  // (The published states ride along so that a failure shows them.)
  expect({ label, unmatched, published: published.map((e) => `${e.status}:${e.progress}`) }).toEqual({
    label,
    unmatched: [],
    published: expect.any(Array),
  });
  // Statuses never go back, progress never goes back within RUNNING, and the final state comes last, once.
  const ranks = states.map((s) => RANK[s.status]!);
  expect({ label, ranks }).toEqual({ label, ranks: [...ranks].sort((a, b) => a - b) });
  const running = states.filter((s) => s.status === 'RUNNING').map((s) => s.progress);
  expect({ label, running }).toEqual({ label, running: [...running].sort((a, b) => a - b) });
  if (toTheEnd) {
    const first = RANK[states[0]!.status]!;
    const stagesAfterFirst = [...new Set(published.map((e) => e.status).filter((st) => RANK[st]! > first))];
    const stagesSeen = new Set(states.map((s) => s.status));
    expect({ label, missingStages: stagesAfterFirst.filter((st) => !stagesSeen.has(st)) }).toEqual({ label, missingStages: [] });
    expect({ label, last: states[states.length - 1]!.status }).toEqual({ label, last: 'COMPLETED' });
    expect({ label, completed: states.filter((s) => s.status === 'COMPLETED').length }).toEqual({ label, completed: 1 });
  }
  return states;
}

/** Resolves when the client's connection is acknowledged (it then counts against the user's limit). */
const connected = (sub: Subscription<unknown>) =>
  new Promise<void>((resolve, reject) => {
    sub.client.on('connected', () => resolve());
    sub.done.catch(reject);
  });

describe('task subscriptions over graphql-ws', () => {
  let stack: TestStack;
  let token: string;
  let courseId: string;
  beforeAll(async () => {
    stack = await startTestStack({ router: { WS_MAX_CONNECTIONS_PER_USER: String(MAX_CONNECTIONS_PER_USER) } });
    token = await stack.token(stack.user('owner'), 'TEACHER');
    courseId = await createCourse(stack, token, 'Subscriptions');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const secondRouter = () => startExtraRouter(stack, 'router-2', { WS_MAX_CONNECTIONS_PER_USER: String(MAX_CONNECTIONS_PER_USER) });

  it('refuses a connection without a valid token', async () => {
    const none = subscribe(stack.routerUrl, undefined, MY_TASKS);
    const forged = subscribe(stack.routerUrl, 'e30.e30.sig', MY_TASKS);
    try {
      // graphql-ws closes a connection its onConnect refuses with 4403 Forbidden.
      await expect(none.done).rejects.toMatchObject({ code: 4403 });
      await expect(forged.done).rejects.toMatchObject({ code: 4403 });
      expect(none.messages.length + forged.messages.length).toBe(0);
    } finally {
      await Promise.all([none.dispose(), forged.dispose()]);
    }
  });

  it('refuses a connection past the per-user limit with 4403, and frees the slot when a client unsubscribes and leaves', async () => {
    const user = await stack.token(stack.user('many-tabs'), 'STUDENT');
    const open: Subscription<unknown>[] = [];
    try {
      for (let i = 0; i < MAX_CONNECTIONS_PER_USER; i++) {
        const sub = subscribe(stack.routerUrl, user, MY_TASKS);
        open.push(sub);
        await connected(sub);
      }
      const extra = subscribe(stack.routerUrl, user, MY_TASKS);
      open.push(extra);
      await expect(extra.done).rejects.toMatchObject({ code: 4403 });
      expect(extra.messages).toEqual([]);

      // Another user has their own allowance.
      const other = subscribe(stack.routerUrl, await stack.token(stack.user('one-tab'), 'STUDENT'), MY_TASKS);
      open.push(other);
      await connected(other);

      // One tab unsubscribes and its lazy client closes the socket: the slot is free again (the router
      // counts the close once the socket is gone, hence the retries on 4403 for a moment).
      const closing = open[0]!;
      const closed = new Promise<void>((resolve) => closing.client.on('closed', () => resolve()));
      closing.unsubscribe();
      await closed;
      const deadline = Date.now() + 10_000;
      let reopened: Subscription<unknown> | undefined;
      for (;;) {
        reopened = subscribe(stack.routerUrl, user, MY_TASKS);
        open.push(reopened);
        const outcome = await connected(reopened).then(
          () => 'connected',
          (err: { code?: number }) => err.code,
        );
        if (outcome === 'connected') break;
        expect(outcome).toBe(4403); // only the limit may refuse it, until the close is counted
        if (Date.now() > deadline) throw new Error('the freed slot was never given back');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await Promise.all(open.map((s) => s.dispose()));
    }
  });

  it('frees the slot of a client that closes its socket while its myTaskUpdated is idle', async () => {
    const user = await stack.token(stack.user('closing-tab'), 'STUDENT');
    const open: Subscription<unknown>[] = [];
    try {
      for (let i = 0; i < MAX_CONNECTIONS_PER_USER; i++) {
        const sub = subscribe(stack.routerUrl, user, MY_TASKS);
        open.push(sub);
        await connected(sub);
      }
      // A tab goes away without unsubscribing; no event ever comes for this user. The router must
      // handle the close at once, not when the subscription's next event would have come.
      const closing = open[0]!;
      const closed = new Promise<void>((resolve) => closing.client.on('closed', () => resolve()));
      await closing.dispose();
      await closed;
      const deadline = Date.now() + 10_000;
      for (;;) {
        const reopened = subscribe(stack.routerUrl, user, MY_TASKS);
        open.push(reopened);
        const outcome = await connected(reopened).then(
          () => 'connected',
          (err: { code?: number }) => err.code,
        );
        if (outcome === 'connected') break;
        expect(outcome).toBe(4403); // only the limit may refuse it, until the close is counted
        if (Date.now() > deadline) throw new Error('the closed socket’s slot was never given back');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await Promise.all(open.map((s) => s.dispose()));
    }
  });

  it('refuses a subscription to someone else’s task, and explains where subscriptions are served over HTTP', async () => {
    const task = await ingest(stack, token, { courseId, title: 'Private', text: 'Only for the owner and the course teachers.' });
    const strangerToken = await stack.token(stack.user('stranger'), 'TEACHER');
    const sub = subscribe(stack.routerUrl, strangerToken, TASK_SUB, { id: task.id });
    try {
      await expect(sub.done).rejects.toMatchObject([{ extensions: { code: 'NOT_FOUND' } }]);
      expect(sub.messages).toHaveLength(0);
    } finally {
      await sub.dispose();
    }
    const overHttp = await stack.gql(TASK_SUB, { id: task.id }, { token });
    expect(overHttp.status).toBe(400);
    expect(overHttp.body.errors?.[0]?.message ?? '').toMatch(/WebSocket/);
  });

  it('closes a connection when its token expires', async () => {
    const shortLived = await stack.keys.token(stack.user('brief'), 'TEACHER', { expiresIn: 2 });
    const sub = subscribe(stack.routerUrl, shortLived, MY_TASKS);
    try {
      const t0 = Date.now();
      await expect(sub.done).rejects.toMatchObject({ code: 4401 });
      expect(Date.now() - t0).toBeLessThan(6000);
    } finally {
      await sub.dispose();
    }
  });

  it('sends the current state first, and completes after a final status', async () => {
    const task = await ingest(stack, token, { courseId, title: 'Done', text: 'Short text that finishes fast.' });
    await waitForTask(stack, token, task.id);
    const late = subscribe<{ taskUpdated: TaskView }>(stack.routerUrl, token, TASK_SUB, { id: task.id });
    try {
      await late.done;
      expect(late.messages).toHaveLength(1);
      expect(late.messages[0]!.data!.taskUpdated.status).toBe('COMPLETED');
    } finally {
      await late.dispose();
    }
  });

  it('delivers every event to subscribers on either of two routers, and the current state after a router restart', async () => {
    const recorder = await recordTaskEvents();
    const subs: Subscription<unknown>[] = [];
    const routers: ServiceProcess[] = [];
    try {
      const router2 = await secondRouter();
      routers.push(router2);
      const up = await upload(stack, token, await makeLargePdf(60), 'two-routers.pdf');
      const task = await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title: 'Two routers' });
      const onA = subscribe<{ taskUpdated: TaskView }>(stack.routerUrl, token, TASK_SUB, { id: task.id });
      const onB = subscribe<{ taskUpdated: TaskView }>(router2.url, token, TASK_SUB, { id: task.id });
      subs.push(onA, onB);
      await Promise.all([onA.done, onB.done]);
      const published = await recorder.final(task.id);
      for (const [label, sub] of [
        ['router A', onA],
        ['router B', onB],
      ] as const) {
        const states = expectPublishedInOrder(label, sub, published, { toTheEnd: true });
        // Progress is seen: several RUNNING updates, with rising progress.
        const running = states.filter((s) => s.status === 'RUNNING').map((s) => s.progress);
        expect(running.length).toBeGreaterThanOrEqual(2);
        expect(running[running.length - 1]!).toBeGreaterThan(running[0]!);
      }
      // Both routers end on the same final state, down to the document resolved by the rag subgraph.
      const lastOf = (sub: Subscription<{ taskUpdated: TaskView }>) => sub.messages[sub.messages.length - 1]!.data!.taskUpdated;
      expect(lastOf(onA)).toEqual(lastOf(onB));
      expect(lastOf(onA)).toMatchObject({ status: 'COMPLETED', progress: 1, document: { status: 'READY', pages: 60 } });

      // A long task, a router restart in the middle, a client that reconnects. The replacement router
      // process comes up first (as behind a load balancer), so the client reconnects while the task runs.
      const replacement = await startExtraRouter(stack, 'router-3', { WS_MAX_CONNECTIONS_PER_USER: String(MAX_CONNECTIONS_PER_USER) });
      routers.push(replacement);
      const up2 = await upload(stack, token, await makeLargePdf(150), 'restart.pdf');
      const long = await ingest(stack, token, { courseId, uploadId: up2.body.uploadId, title: 'Restart' });
      const before = subscribe<{ taskUpdated: TaskView }>(router2.url, token, TASK_SUB, { id: long.id });
      subs.push(before);
      const seen = await before.until((d) => d.taskUpdated.status === 'RUNNING' && d.taskUpdated.progress > 0.05);
      const stopping = stopService(router2);
      // The old socket closes: the router going away says so (1001).
      await expect(before.done).rejects.toMatchObject({ code: 1001 });
      const after = subscribe<{ taskUpdated: TaskView }>(replacement.url, token, TASK_SUB, { id: long.id });
      subs.push(after);
      const first = await after.until(() => true);
      // Reconnected mid-task; the first message is the current state, not a replay.
      expect(first.taskUpdated.status).toBe('RUNNING');
      expect(first.taskUpdated.progress).toBeGreaterThanOrEqual(seen.taskUpdated.progress);
      expect(await stopping).toBe(0);
      await after.done;
      const publishedLong = await recorder.final(long.id);
      expectPublishedInOrder('before the restart', before, publishedLong, { toTheEnd: false });
      expectPublishedInOrder('after the restart', after, publishedLong, { toTheEnd: true });
      expect(recorder.errors).toEqual([]);
    } finally {
      await Promise.all(subs.map((s) => s.dispose()));
      await recorder.close();
      await Promise.all(routers.map((r) => stopService(r)));
    }
  });
});
