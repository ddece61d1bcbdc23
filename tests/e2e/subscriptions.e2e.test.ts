import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { stopService, type ServiceProcess } from '../../scripts/lib/stack.js';
import { TASK_FIELDS, createCourse, ingest, upload, waitForTask, type TaskView } from '../support/ingest.js';
import { makeLargePdf } from '../support/pdf-fixtures.js';
import { startExtraRouter, startTestStack, type TestStack } from '../support/stack.js';
import { subscribe } from '../support/ws.js';

const TASK_SUB = `subscription($id: ID!) { taskUpdated(id: $id) { ${TASK_FIELDS} } }`;

describe('task subscriptions over graphql-ws', () => {
  let stack: TestStack;
  let token: string;
  let courseId: string;
  before(async () => {
    stack = await startTestStack();
    token = await stack.token(stack.user('owner'), 'TEACHER');
    courseId = await createCourse(stack, token, 'Subscriptions');
  });
  after(() => stack?.stop());

  const secondRouter = () => startExtraRouter(stack, 'router-2');

  it('refuses a connection without a valid token', async () => {
    const none = subscribe(stack.routerUrl, undefined, 'subscription { myTaskUpdated { id } }');
    await assert.rejects(none.done);
    const forged = subscribe(stack.routerUrl, 'e30.e30.sig', 'subscription { myTaskUpdated { id } }');
    await assert.rejects(forged.done);
    assert.equal(none.messages.length + forged.messages.length, 0);
  });

  it('refuses a subscription to someone else’s task, and explains where subscriptions are served over HTTP', async () => {
    const task = await ingest(stack, token, { courseId, title: 'Private', text: 'Only for the owner and the course teachers.' });
    const strangerToken = await stack.token(stack.user('stranger'), 'TEACHER');
    const sub = subscribe(stack.routerUrl, strangerToken, TASK_SUB, { id: task.id });
    await assert.rejects(sub.done, (errors: unknown) => {
      assert.ok(Array.isArray(errors));
      assert.equal((errors[0] as { extensions?: { code?: string } }).extensions?.code, 'NOT_FOUND');
      return true;
    });
    assert.equal(sub.messages.length, 0);
    const overHttp = await stack.gql(TASK_SUB, { id: task.id }, { token });
    assert.equal(overHttp.status, 400, JSON.stringify(overHttp.body));
    assert.match(overHttp.body.errors?.[0]?.message ?? '', /WebSocket/);
  });

  it('closes a connection when its token expires', async () => {
    const shortLived = await stack.keys.token(stack.user('brief'), 'TEACHER', { expiresIn: 2 });
    const sub = subscribe(stack.routerUrl, shortLived, 'subscription { myTaskUpdated { id } }');
    const t0 = Date.now();
    await assert.rejects(sub.done, (err: unknown) => (err as { code?: number }).code === 4401);
    assert.ok(Date.now() - t0 < 6000);
  });

  it('sends the current state first, and completes after a final status', async () => {
    const task = await ingest(stack, token, { courseId, title: 'Done', text: 'Short text that finishes fast.' });
    await waitForTask(stack, token, task.id);
    const late = subscribe<{ taskUpdated: TaskView }>(stack.routerUrl, token, TASK_SUB, { id: task.id });
    await late.done;
    assert.equal(late.messages.length, 1);
    assert.equal(late.messages[0]!.data!.taskUpdated.status, 'COMPLETED');
  });

  it('delivers every event to subscribers on either of two routers, and the current state after a router restart', async () => {
    let router2: ServiceProcess | undefined = await secondRouter();
    try {
      const up = await upload(stack, token, await makeLargePdf(60), 'two-routers.pdf');
      const task = await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title: 'Two routers' });
      const onA = subscribe<{ taskUpdated: TaskView }>(stack.routerUrl, token, TASK_SUB, { id: task.id });
      const onB = subscribe<{ taskUpdated: TaskView }>(router2.url, token, TASK_SUB, { id: task.id });
      await Promise.all([onA.done, onB.done]);
      for (const sub of [onA, onB]) {
        const statuses = sub.messages.map((m) => m.data!.taskUpdated.status);
        assert.equal(statuses[statuses.length - 1], 'COMPLETED');
        assert.ok(statuses.filter((s) => s === 'RUNNING').length >= 2, `progress seen (${statuses.join(',')})`);
      }

      // A long task, a router restart in the middle, a client that reconnects.
      const up2 = await upload(stack, token, await makeLargePdf(110), 'restart.pdf');
      const long = await ingest(stack, token, { courseId, uploadId: up2.body.uploadId, title: 'Restart' });
      const before = subscribe<{ taskUpdated: TaskView }>(router2.url, token, TASK_SUB, { id: long.id });
      const seen = await before.until((d) => d.taskUpdated.status === 'RUNNING' && d.taskUpdated.progress > 0.05);
      await stopService(router2);
      await assert.rejects(before.done, 'the old socket closes');
      router2 = await secondRouter();
      const after = subscribe<{ taskUpdated: TaskView }>(router2.url, token, TASK_SUB, { id: long.id });
      const first = await after.until(() => true);
      assert.notEqual(first.taskUpdated.status, 'ACCEPTED');
      assert.ok(first.taskUpdated.progress >= seen.taskUpdated.progress, 'the first message is the current state, not a replay');
      await after.done;
      assert.equal(after.messages[after.messages.length - 1]!.data!.taskUpdated.status, 'COMPLETED');
    } finally {
      if (router2) await stopService(router2);
    }
  });
});
