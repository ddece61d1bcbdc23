import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
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
  /** Subscriptions a test opened: closed after it, whatever happened. */
  const open: Subscription<unknown>[] = [];
  const track = <T>(sub: Subscription<T>) => (open.push(sub as Subscription<unknown>), sub);
  beforeAll(async () => {
    stack = await startTestStack({
      workers: 2,
      worker: { INGEST_MAX_PAGES: '120', WORKER_CONCURRENCY: '2' },
      router: { UPLOAD_MAX_BYTES: String(3 * 1024 * 1024) },
    });
    teacher = stack.user('teacher');
    token = await stack.token(teacher, 'TEACHER');
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.dispose()));
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** A long PDF's ingestion, followed over a subscription until it is RUNNING past `progress`. */
  async function runningIngestion(title: string, pages: number, progress: number) {
    const courseId = await createCourse(stack, token, title);
    const up = await upload(stack, token, await makeLargePdf(pages), `${title}.pdf`);
    const task = await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title });
    const watch = track(
      subscribe<{ taskUpdated: TaskView }>(stack.routerUrl, token, `subscription($id: ID!) { taskUpdated(id: $id) { ${TASK_FIELDS} } }`, {
        id: task.id,
      }),
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
    const mine = track(subscribe<{ myTaskUpdated: TaskView }>(stack.routerUrl, token, `subscription { myTaskUpdated { ${TASK_FIELDS} } }`));
    await new Promise((r) => setTimeout(r, 300)); // let the socket subscribe before the task exists
    const up = await upload(stack, token, await makeTextPdf(PAGES), 'photosynthesis.pdf');
    expect(up.status).toBe(201);
    expect(up.body.format).toBe('PDF');
    // The queue is paused (as an operator would during maintenance), so the task waits visibly.
    const queue = new Queue('ingest', { connection: bullConnection(testInfra().REDIS_URL) });
    await queue.pause();
    let one: Subscription<{ taskUpdated: TaskView }>;
    let task: TaskView;
    try {
      task = await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title: 'Photosynthesis' });
      // The mutation returns at once.
      expect(task.status).toBe('ACCEPTED');
      one = track(
        subscribe<{ taskUpdated: TaskView }>(stack.routerUrl, token, `subscription($id: ID!) { taskUpdated(id: $id) { ${TASK_FIELDS} } }`, {
          id: task.id,
        }),
      );
      // The first message is the current state.
      const first = await one.until(() => true);
      expect(first.taskUpdated.status).toBe('ACCEPTED');
      await mine.until((d) => d.myTaskUpdated.id === task.id);
    } finally {
      await queue.resume();
      await queue.close();
    }
    await one.done; // completes after the final status
    await mine.until((d) => d.myTaskUpdated.id === task.id && d.myTaskUpdated.status === 'COMPLETED');
    await mine.dispose();

    const statuses = mine.messages.map((m) => m.data!.myTaskUpdated).filter((t) => t.id === task.id);
    expect(statuses[0]!.status).toBe('ACCEPTED');
    // Several RUNNING updates; progress never goes back, and rises.
    const running = statuses.filter((t) => t.status === 'RUNNING');
    expect(running.length).toBeGreaterThanOrEqual(2);
    const progress = running.map((t) => t.progress);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress[progress.length - 1]!).toBeGreaterThan(progress[0]!);
    // Progress messages name pages.
    expect(running.map((t) => t.message ?? '')).toContainEqual(expect.stringMatching(/page/i));
    expect(statuses[statuses.length - 1]!.status).toBe('COMPLETED');

    const last = one.messages[one.messages.length - 1]!.data!.taskUpdated;
    expect(last.status).toBe('COMPLETED');
    expect(last.progress).toBe(1);
    // Fields from the rag subgraph resolve in subscription messages.
    expect(last.document?.status).toBe('READY');
    expect(last.document?.pages).toBe(4);

    const chunks = await chunksOf(last.document!.id);
    expect(chunks).toHaveLength(last.document!.chunkCount);
    // The page-3 passage is stored, on page 3 (and at most the next).
    const hit = chunks.find((c) => c.text.includes('quetzalcoatlus'));
    expect(hit).toBeDefined();
    expect(hit!.pageStart).toBeLessThanOrEqual(3);
    expect(hit!.pageEnd).toBeGreaterThanOrEqual(3);
    expect(hit!.pageEnd - hit!.pageStart).toBeLessThanOrEqual(1);
    const first = chunks.find((c) => c.text.includes('Chlorophyll'));
    expect(first?.pageStart).toBe(1);
    const pageFour = chunks.find((c) => c.text.includes('oxidative phosphorylation'));
    expect(pageFour?.pageEnd).toBe(4);
    // Pages never go back.
    const starts = chunks.map((c) => c.pageStart);
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
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
    expect(b.id).toBe(a.id);
    const c = await ingest(stack, token, input);
    expect(c.id).toBe(a.id);
    const done = await waitForTask(stack, token, a.id);
    expect(done.status).toBe('COMPLETED');
    expect(done.document?.pages).toBe(1);
    const mine = await stack.gql<{ myTasks: { edges: { node: { id: string } }[] } }>(
      '{ myTasks(first: 100) { edges { node { id } } } }',
      {},
      { token },
    );
    expect(mine.body.data!.myTasks.edges.filter((e) => e.node.id === a.id)).toHaveLength(1);
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
      expect({ title, status: up.status }).toEqual({ title, status: 201 });
      tasks.push({ code, title, task: await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title }) });
    }
    for (const { code, title, task } of tasks) {
      const done = await waitForTask(stack, token, task.id);
      // Failed with its code and a message a teacher understands; bad input is not retried.
      expect({
        title,
        status: done.status,
        code: done.error?.code,
        understandable: (done.error?.message.length ?? 0) > 20,
        attempts: done.attempts,
        document: done.document?.status,
        documentCode: done.document?.error?.code,
      }).toEqual({ title, status: 'FAILED', code, understandable: true, attempts: 1, document: 'FAILED', documentCode: code });
    }
    const scanned = await getTask(stack, token, tasks[2]!.task.id);
    expect(scanned.error!.message).toMatch(/OCR/);

    const good = await upload(stack, token, await makeTextPdf(PAGES.slice(0, 2)), 'good.pdf');
    const ok = await waitForTask(stack, token, (await ingest(stack, token, { courseId, uploadId: good.body.uploadId, title: 'Good' })).id);
    // The workers keep serving.
    expect(ok.status).toBe('COMPLETED');
  });

  it('refuses files over the size limit with 413, and files that are not documents with 415', async () => {
    const big = Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(3 * 1024 * 1024 + 10, 32)]);
    const res = await upload(stack, token, big, 'big.pdf');
    expect(res.status).toBe(413);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('PAYLOAD_TOO_LARGE');
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const wrong = await upload(stack, token, png, 'lecture.pdf');
    expect(wrong.status).toBe(415);
    expect(wrong.body.errors?.[0]?.extensions?.code).toBe('UNSUPPORTED_TYPE');
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
    expect(res.body.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');

    const up = await upload(stack, token, await makeTextPdf(PAGES.slice(0, 1)), 'one.pdf');
    await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title: 'Once' });
    const again = await stack.gql(
      'mutation($i: IngestDocumentInput!) { ingestDocument(input: $i) { id } }',
      { i: { courseId, uploadId: up.body.uploadId, title: 'Twice' } },
      { token },
    );
    expect(again.body.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
  });

  it('retries a failed task on request, deletes a document with its chunks and file, and hides tasks from strangers', async () => {
    const courseId = await createCourse(stack, token, 'Lifecycle');
    const bad = await upload(stack, token, await makeEncryptedPdf(), 'locked.pdf');
    const failed = await waitForTask(
      stack,
      token,
      (await ingest(stack, token, { courseId, uploadId: bad.body.uploadId, title: 'Locked' })).id,
    );
    expect(failed.status).toBe('FAILED');
    const retried = await stack.gql<{ retryTask: { status: string } }>(
      'mutation($id: ID!) { retryTask(id: $id) { status } }',
      { id: failed.id },
      { token },
    );
    expect(retried.body.data?.retryTask.status).toBe('ACCEPTED');
    // Ran again and failed again; a retry starts counting attempts afresh.
    const again = await waitForTask(stack, token, failed.id);
    expect(again.status).toBe('FAILED');
    expect(again.error?.code).toBe('ENCRYPTED_PDF');
    expect(again.attempts).toBe(1);
    expect(again.document?.status).toBe('FAILED');

    const stranger = await stack.token(stack.user('stranger'), 'TEACHER');
    // A stranger cannot tell a task they may not see from one that does not exist.
    const peek = await stack.gql('query($id: ID!) { task(id: $id) { id } }', { id: failed.id }, { token: stranger });
    expect(peek.body.errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND');

    const good = await upload(stack, token, await makeTextPdf(PAGES.slice(0, 2)), 'keep.pdf');
    const done = await waitForTask(
      stack,
      token,
      (await ingest(stack, token, { courseId, uploadId: good.body.uploadId, title: 'Keep' })).id,
    );
    const conflict = await stack.gql('mutation($id: ID!) { retryTask(id: $id) { status } }', { id: done.id }, { token });
    // Only failed tasks are retried.
    expect(conflict.body.errors?.[0]?.extensions?.['code']).toBe('CONFLICT');
    const documentId = done.document!.id;
    expect((await chunksOf(documentId)).length).toBeGreaterThan(0);
    // The file is stored.
    const blobKey = await blobKeyOf(documentId);
    expect(blobKey).toEqual(expect.any(String));
    expect(existsSync(join(stack.blobDir, blobKey!))).toBe(true);
    const del = await stack.gql<{ deleteDocument: boolean }>(
      'mutation($id: ID!) { deleteDocument(id: $id) }',
      { id: documentId },
      { token },
    );
    expect(del.body.data?.deleteDocument).toBe(true);
    expect(await chunksOf(documentId)).toEqual([]);
    // The file is gone.
    expect(existsSync(join(stack.blobDir, blobKey!))).toBe(false);
    const gone = await stack.gql('query($id: ID!) { document(id: $id) { id } }', { id: documentId }, { token });
    expect(gone.body.errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND');

    const worker = stack.services['worker-1']!;
    const metrics = await (await fetch(`${worker.url}/metrics`)).text();
    expect(metrics).toMatch(/queue_jobs\{[^}]*queue="ingest"[^}]*state="completed"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/job_duration_seconds_count\{[^}]*job="INGEST_DOCUMENT"/);
    expect((await fetch(`${worker.url}/ready`)).status).toBe(200);
  });

  it('cancelTask stops a running ingestion and leaves no chunks', async () => {
    const { task, watch } = await runningIngestion('Cancel', 110, 0.1);
    const cancelled = await stack.gql<{ cancelTask: { status: string } }>(
      'mutation($id: ID!) { cancelTask(id: $id) { status } }',
      { id: task.id },
      { token },
    );
    expect(cancelled.body.data?.cancelTask.status).toBe('CANCELLED');
    await watch.done;
    expect(watch.messages[watch.messages.length - 1]!.data!.taskUpdated.status).toBe('CANCELLED');
    await new Promise((r) => setTimeout(r, 1500)); // the worker notices and stops
    const final = await getTask(stack, token, task.id);
    expect(final.status).toBe('CANCELLED');
    expect(final.document?.status).toBe('FAILED');
    expect(final.document?.error?.code).toBe('CANCELLED');
    expect(await chunksOf(final.document!.id)).toEqual([]);
    // The worker aborted the parse.
    const stopped = Object.values(stack.services)
      .filter((s) => s.name.startsWith('worker'))
      .some((s) => s.lines.some((l) => l.includes('ingestion stopped') && l.includes(task.id)));
    expect(stopped).toBe(true);
    const again = await stack.gql('mutation($id: ID!) { cancelTask(id: $id) { status } }', { id: task.id }, { token });
    expect(again.body.errors?.[0]?.extensions?.['code']).toBe('CONFLICT');
  });

  it('completes a task once, without duplicate chunks, when its worker is killed mid-ingestion', async () => {
    const { task, watch } = await runningIngestion('Crash', 100, 0.15);
    // Found the worker running the job.
    const runner = workerRunning(task.id);
    expect(runner).toBeDefined();
    runner!.child.kill('SIGKILL');
    await watch.done;
    const final = await getTask(stack, token, task.id);
    expect(final.status).toBe('COMPLETED');
    // Taken over by the other worker, and completed once.
    expect(final.attempts).toBe(2);
    expect(watch.messages.filter((m) => m.data?.taskUpdated.status === 'COMPLETED')).toHaveLength(1);
    const chunks = await chunksOf(final.document!.id);
    expect(chunks).toHaveLength(final.document!.chunkCount);
    // No duplicate positions: they are 0..n-1.
    expect(new Set(chunks.map((c) => c.position)).size).toBe(chunks.length);
    expect(chunks.map((c) => c.position)).toEqual(chunks.map((_, i) => i));
  });

  it('on SIGTERM a worker finishes its running job, then exits 0', async () => {
    const { task } = await runningIngestion('Shutdown', 80, 0.1);
    // Found the worker running the job.
    const runner = workerRunning(task.id);
    expect(runner).toBeDefined();
    runner!.child.kill('SIGTERM');
    expect(await runner!.exited).toBe(0);
    const final = await getTask(stack, token, task.id);
    expect(final.status).toBe('COMPLETED');
    // Finished by the worker that was stopping, not taken over.
    expect(final.attempts).toBe(1);
  });
});
