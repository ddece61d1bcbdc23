import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { makeEncryptedPdf, makeLargePdf, makeNoTextPdf, makeTextPdf, truncate } from '../support/pdf-fixtures.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TASK_FIELDS, blobKeyOf, chunksOf, createCourse, getTask, ingest, upload, waitForTask, type TaskView } from '../support/ingest.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { Queue } from 'bullmq';
import { bullConnection } from '../../lib/redis.js';
import { testInfra } from '../support/infra.js';
import { subscribe, type Subscription } from '../support/ws.js';

/** About 1,800 characters a page, as a real textbook page has, so chunks stay within a page or two. */
const filler = (topic: string) =>
  Array.from(
    { length: 6 },
    (_, i) =>
      `${topic} note ${i + 1}: plants balance light capture, water loss and carbon uptake across the day, and this balance shifts with temperature and season.`,
  ).join(' ');
const PAGES = [
  ['Photosynthesis converts light energy into chemical energy.', 'Chlorophyll absorbs mostly blue and red light.'],
  ['The Calvin cycle fixes carbon dioxide into sugars.', 'Rubisco is the most abundant enzyme on Earth.'],
  ['Stomata regulate gas exchange; the quetzalcoatlus paragraph lives on page three.', 'Guard cells open and close each stoma.'],
  ['Cellular respiration releases the energy stored in glucose.', 'Mitochondria are the site of oxidative phosphorylation.'],
].map((paragraphs, i) => [filler(`Page ${i + 1}`), ...paragraphs, filler(`Summary ${i + 1}`)]);

describe('document ingestion as a background task', () => {
  let stack: TestStack;
  let teacher: string;
  let token: string;
  before(async () => {
    stack = await startTestStack({
      workers: 2,
      worker: { INGEST_MAX_PAGES: '120', WORKER_CONCURRENCY: '2' },
      router: { UPLOAD_MAX_BYTES: String(3 * 1024 * 1024) },
    });
    teacher = stack.user('teacher');
    token = await stack.token(teacher, 'TEACHER');
  });
  after(() => stack?.stop());

  /** A long PDF's ingestion, followed over a subscription until it is RUNNING past `progress`. */
  async function runningIngestion(title: string, pages: number, progress: number) {
    const courseId = await createCourse(stack, token, title);
    const up = await upload(stack, token, await makeLargePdf(pages), `${title}.pdf`);
    const task = await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title });
    const watch = subscribe<{ taskUpdated: TaskView }>(
      stack.routerUrl,
      token,
      `subscription($id: ID!) { taskUpdated(id: $id) { ${TASK_FIELDS} } }`,
      {
        id: task.id,
      },
    );
    await watch.until((d) => d.taskUpdated.status === 'RUNNING' && d.taskUpdated.progress > progress);
    return { task, watch };
  }

  /** The live worker process that started the task's job. */
  const workerRunning = (taskId: string) =>
    Object.values(stack.services).find(
      (s) =>
        s.name.startsWith('worker') &&
        s.child.exitCode === null &&
        s.child.signalCode === null &&
        s.lines.some((l) => l.includes('job started') && l.includes(taskId)),
    );

  it('streams ACCEPTED, RUNNING with rising progress, then COMPLETED, and stores chunks with their page numbers', async () => {
    const courseId = await createCourse(stack, token, 'Biology');
    const mine = subscribe<{ myTaskUpdated: TaskView }>(stack.routerUrl, token, `subscription { myTaskUpdated { ${TASK_FIELDS} } }`);
    await new Promise((r) => setTimeout(r, 300)); // let the socket subscribe before the task exists
    const up = await upload(stack, token, await makeTextPdf(PAGES), 'photosynthesis.pdf');
    assert.equal(up.status, 201);
    assert.equal(up.body.format, 'PDF');
    // The queue is paused (as an operator would during maintenance), so the task waits visibly.
    const queue = new Queue('ingest', { connection: bullConnection(testInfra().REDIS_URL) });
    await queue.pause();
    let one: Subscription<{ taskUpdated: TaskView }>;
    let task: TaskView;
    try {
      task = await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title: 'Photosynthesis' });
      assert.equal(task.status, 'ACCEPTED', 'the mutation returns at once');
      one = subscribe<{ taskUpdated: TaskView }>(
        stack.routerUrl,
        token,
        `subscription($id: ID!) { taskUpdated(id: $id) { ${TASK_FIELDS} } }`,
        {
          id: task.id,
        },
      );
      const first = await one.until(() => true);
      assert.equal(first.taskUpdated.status, 'ACCEPTED', 'the first message is the current state');
      await mine.until((d) => d.myTaskUpdated.id === task.id);
    } finally {
      await queue.resume();
      await queue.close();
    }
    await one.done; // completes after the final status
    await mine.until((d) => d.myTaskUpdated.id === task.id && d.myTaskUpdated.status === 'COMPLETED');
    await mine.dispose();

    const statuses = mine.messages.map((m) => m.data!.myTaskUpdated).filter((t) => t.id === task.id);
    assert.equal(statuses[0]!.status, 'ACCEPTED');
    const running = statuses.filter((t) => t.status === 'RUNNING');
    assert.ok(running.length >= 2, `several RUNNING updates (${running.length})`);
    const progress = running.map((t) => t.progress);
    assert.deepEqual(
      progress,
      [...progress].sort((a, b) => a - b),
      'progress never goes back',
    );
    assert.ok(progress[progress.length - 1]! > progress[0]!, 'progress rises');
    assert.ok(
      running.some((t) => /page/i.test(t.message ?? '')),
      'progress messages name pages',
    );
    assert.equal(statuses[statuses.length - 1]!.status, 'COMPLETED');

    const last = one.messages[one.messages.length - 1]!.data!.taskUpdated;
    assert.equal(last.status, 'COMPLETED');
    assert.equal(last.progress, 1);
    assert.equal(last.document?.status, 'READY', 'fields from the rag subgraph resolve in subscription messages');
    assert.equal(last.document?.pages, 4);

    const chunks = await chunksOf(last.document!.id);
    assert.equal(chunks.length, last.document!.chunkCount);
    const hit = chunks.find((c) => c.text.includes('quetzalcoatlus'));
    assert.ok(hit, 'the page-3 passage is stored');
    assert.ok(
      hit.pageStart <= 3 && hit.pageEnd >= 3 && hit.pageEnd - hit.pageStart <= 1,
      `page-3 passage on pages ${hit.pageStart}-${hit.pageEnd}`,
    );
    const first = chunks.find((c) => c.text.includes('Chlorophyll'));
    assert.equal(first?.pageStart, 1);
    const pageFour = chunks.find((c) => c.text.includes('oxidative phosphorylation'));
    assert.equal(pageFour?.pageEnd, 4);
    assert.ok(
      chunks.every((c, i) => i === 0 || c.pageStart >= chunks[i - 1]!.pageStart),
      'pages never go back',
    );
  });

  it('ingests pasted Markdown, and the same idempotency key twice gives one task', async () => {
    const courseId = await createCourse(stack, token, 'Notes');
    const input = {
      courseId,
      title: 'Week 1',
      text: '# Week 1\n\nOsmosis moves water across membranes.\n\n## Diffusion\n\nParticles spread out.',
      format: 'MARKDOWN',
      idempotencyKey: `k-${teacher}`,
    };
    const [a, b] = await Promise.all([ingest(stack, token, input), ingest(stack, token, input)]);
    assert.equal(a.id, b.id);
    const c = await ingest(stack, token, input);
    assert.equal(c.id, a.id);
    const done = await waitForTask(stack, token, a.id);
    assert.equal(done.status, 'COMPLETED');
    assert.equal(done.document?.pages, 1);
    const mine = await stack.gql<{ myTasks: { edges: { node: { id: string } }[] } }>(
      '{ myTasks(first: 100) { edges { node { id } } } }',
      {},
      { token },
    );
    assert.equal(mine.body.data!.myTasks.edges.filter((e) => e.node.id === a.id).length, 1);
  });

  it('fails encrypted, truncated, text-less and too-long PDFs with their codes, and keeps serving', async () => {
    const courseId = await createCourse(stack, token, 'Bad files');
    const cases: [string, Buffer, string][] = [
      ['encrypted', await makeEncryptedPdf(), 'ENCRYPTED_PDF'],
      ['truncated', truncate(await makeTextPdf(PAGES), 0.4), 'MALFORMED_FILE'],
      ['scanned', await makeNoTextPdf(), 'NO_TEXT'],
      ['too many pages', await makeLargePdf(130), 'TOO_LARGE'],
    ];
    const tasks = [];
    for (const [title, bytes, code] of cases) {
      const up = await upload(stack, token, bytes, `${title}.pdf`);
      assert.equal(up.status, 201, `${title} upload`);
      tasks.push({ code, title, task: await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title }) });
    }
    for (const { code, title, task } of tasks) {
      const done = await waitForTask(stack, token, task.id);
      assert.equal(done.status, 'FAILED', title);
      assert.equal(done.error?.code, code, title);
      assert.ok((done.error?.message.length ?? 0) > 20, `${title}: a message a teacher understands`);
      assert.equal(done.attempts, 1, `${title}: bad input is not retried`);
      assert.equal(done.document?.status, 'FAILED');
      assert.equal(done.document?.error?.code, code);
    }
    const scanned = await getTask(stack, token, tasks[2]!.task.id);
    assert.match(scanned.error!.message, /OCR/);

    const good = await upload(stack, token, await makeTextPdf(PAGES.slice(0, 2)), 'good.pdf');
    const ok = await waitForTask(stack, token, (await ingest(stack, token, { courseId, uploadId: good.body.uploadId, title: 'Good' })).id);
    assert.equal(ok.status, 'COMPLETED', 'the workers keep serving');
  });

  it('refuses files over the size limit with 413, and files that are not documents with 415', async () => {
    const big = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(3 * 1024 * 1024 + 10, 32)]);
    const res = await upload(stack, token, big, 'big.pdf');
    assert.equal(res.status, 413);
    assert.equal(res.body.errors?.[0]?.extensions?.code, 'PAYLOAD_TOO_LARGE');
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const wrong = await upload(stack, token, png, 'lecture.pdf');
    assert.equal(wrong.status, 415);
    assert.equal(wrong.body.errors?.[0]?.extensions?.code, 'UNSUPPORTED_TYPE');
  });

  it('lets only the course’s teachers ingest, and an upload feeds one document', async () => {
    const courseId = await createCourse(stack, token, 'Guarded');
    const student = stack.user('student');
    const studentToken = await stack.token(student, 'STUDENT');
    await stack.gql(
      'mutation($c: ID!, $u: ID!) { addCourseMember(courseId: $c, userId: $u, role: STUDENT) { userId } }',
      { c: courseId, u: student },
      { token },
    );
    const res = await stack.gql(
      'mutation($i: IngestDocumentInput!) { ingestDocument(input: $i) { id } }',
      { i: { courseId, title: 'x', text: 'hello world' } },
      { token: studentToken },
    );
    assert.equal(res.body.errors?.[0]?.extensions?.['code'], 'FORBIDDEN');

    const up = await upload(stack, token, await makeTextPdf(PAGES.slice(0, 1)), 'one.pdf');
    await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title: 'Once' });
    const again = await stack.gql(
      'mutation($i: IngestDocumentInput!) { ingestDocument(input: $i) { id } }',
      { i: { courseId, uploadId: up.body.uploadId, title: 'Twice' } },
      { token },
    );
    assert.equal(again.body.errors?.[0]?.extensions?.['code'], 'BAD_USER_INPUT');
  });

  it('retries a failed task on request, deletes a document with its chunks and file, and hides tasks from strangers', async () => {
    const courseId = await createCourse(stack, token, 'Lifecycle');
    const bad = await upload(stack, token, await makeEncryptedPdf(), 'locked.pdf');
    const failed = await waitForTask(
      stack,
      token,
      (await ingest(stack, token, { courseId, uploadId: bad.body.uploadId, title: 'Locked' })).id,
    );
    assert.equal(failed.status, 'FAILED');
    const retried = await stack.gql<{ retryTask: { status: string } }>(
      'mutation($id: ID!) { retryTask(id: $id) { status } }',
      { id: failed.id },
      { token },
    );
    assert.equal(retried.body.data?.retryTask.status, 'ACCEPTED');
    const again = await waitForTask(stack, token, failed.id);
    assert.equal(again.status, 'FAILED', 'ran again and failed again');
    assert.equal(again.error?.code, 'ENCRYPTED_PDF');
    assert.equal(again.attempts, 1, 'a retry starts counting attempts afresh');
    assert.equal(again.document?.status, 'FAILED');

    const stranger = await stack.token(stack.user('stranger'), 'TEACHER');
    // A stranger cannot tell a task they may not see from one that does not exist.
    const peek = await stack.gql('query($id: ID!) { task(id: $id) { id } }', { id: failed.id }, { token: stranger });
    assert.equal(peek.body.errors?.[0]?.extensions?.['code'], 'NOT_FOUND');

    const good = await upload(stack, token, await makeTextPdf(PAGES.slice(0, 2)), 'keep.pdf');
    const done = await waitForTask(
      stack,
      token,
      (await ingest(stack, token, { courseId, uploadId: good.body.uploadId, title: 'Keep' })).id,
    );
    const conflict = await stack.gql('mutation($id: ID!) { retryTask(id: $id) { status } }', { id: done.id }, { token });
    assert.equal(conflict.body.errors?.[0]?.extensions?.['code'], 'CONFLICT', 'only failed tasks are retried');
    const documentId = done.document!.id;
    assert.ok((await chunksOf(documentId)).length > 0);
    const blobKey = await blobKeyOf(documentId);
    assert.ok(existsSync(join(stack.blobDir, blobKey!)), 'the file is stored');
    const del = await stack.gql<{ deleteDocument: boolean }>(
      'mutation($id: ID!) { deleteDocument(id: $id) }',
      { id: documentId },
      { token },
    );
    assert.equal(del.body.data?.deleteDocument, true);
    assert.deepEqual(await chunksOf(documentId), []);
    assert.equal(existsSync(join(stack.blobDir, blobKey!)), false, 'the file is gone');
    const gone = await stack.gql('query($id: ID!) { document(id: $id) { id } }', { id: documentId }, { token });
    assert.equal(gone.body.errors?.[0]?.extensions?.['code'], 'NOT_FOUND');

    const worker = stack.services['worker-1']!;
    const metrics = await (await fetch(`${worker.url}/metrics`)).text();
    assert.match(metrics, /queue_jobs\{[^}]*queue="ingest"[^}]*state="completed"[^}]*\} [1-9]/);
    assert.match(metrics, /job_duration_seconds_count\{[^}]*job="INGEST_DOCUMENT"/);
    assert.equal((await fetch(`${worker.url}/ready`)).status, 200);
  });

  it('cancelTask stops a running ingestion and leaves no chunks', async () => {
    const { task, watch } = await runningIngestion('Cancel', 110, 0.1);
    const cancelled = await stack.gql<{ cancelTask: { status: string } }>(
      'mutation($id: ID!) { cancelTask(id: $id) { status } }',
      { id: task.id },
      { token },
    );
    assert.equal(cancelled.body.data?.cancelTask.status, 'CANCELLED');
    await watch.done;
    assert.equal(watch.messages[watch.messages.length - 1]!.data!.taskUpdated.status, 'CANCELLED');
    await new Promise((r) => setTimeout(r, 1500)); // the worker notices and stops
    const final = await getTask(stack, token, task.id);
    assert.equal(final.status, 'CANCELLED');
    assert.equal(final.document?.status, 'FAILED');
    assert.equal(final.document?.error?.code, 'CANCELLED');
    assert.deepEqual(await chunksOf(final.document!.id), []);
    const stopped = Object.values(stack.services)
      .filter((s) => s.name.startsWith('worker'))
      .some((s) => s.lines.some((l) => l.includes('ingestion stopped') && l.includes(task.id)));
    assert.ok(stopped, 'the worker aborted the parse');
    const again = await stack.gql('mutation($id: ID!) { cancelTask(id: $id) { status } }', { id: task.id }, { token });
    assert.equal(again.body.errors?.[0]?.extensions?.['code'], 'CONFLICT');
  });

  it('completes a task once, without duplicate chunks, when its worker is killed mid-ingestion', async () => {
    const { task, watch } = await runningIngestion('Crash', 100, 0.15);
    const runner = workerRunning(task.id);
    assert.ok(runner, 'found the worker running the job');
    runner.child.kill('SIGKILL');
    await watch.done;
    const final = await getTask(stack, token, task.id);
    assert.equal(final.status, 'COMPLETED');
    assert.equal(final.attempts, 2, 'taken over by the other worker');
    assert.equal(watch.messages.filter((m) => m.data?.taskUpdated.status === 'COMPLETED').length, 1, 'completed once');
    const chunks = await chunksOf(final.document!.id);
    assert.equal(chunks.length, final.document!.chunkCount);
    assert.equal(new Set(chunks.map((c) => c.position)).size, chunks.length, 'no duplicate positions');
    assert.deepEqual(
      chunks.map((c) => c.position),
      chunks.map((_, i) => i),
      'positions are 0..n-1',
    );
  });

  it('on SIGTERM a worker finishes its running job, then exits 0', async () => {
    const { task } = await runningIngestion('Shutdown', 80, 0.1);
    const runner = workerRunning(task.id);
    assert.ok(runner, 'found the worker running the job');
    runner.child.kill('SIGTERM');
    assert.equal(await runner.exited, 0);
    const final = await getTask(stack, token, task.id);
    assert.equal(final.status, 'COMPLETED');
    assert.equal(final.attempts, 1, 'finished by the worker that was stopping, not taken over');
  });
});
