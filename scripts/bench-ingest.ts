/**
 * npm run bench:ingest [-- --pages 352 --small 300 --ocr-pages 20 --subscriptions 1000 --events 300
 *                         --only book,corpus,small,ocr,events --cpu-prof <dir>]
 *
 * 1. A large PDF, end to end with one worker (WORKER_CONCURRENCY 1): a book of `--pages` pages
 *    made at run time (`book`), and the longest PDF of ../shared/corpus when it has one of at
 *    least 100 pages (`corpus`; skipped, saying so, otherwise). Upload, then ingestDocument to
 *    COMPLETED (timed on its own: the figure the issue's target is about): the worker's sandboxed
 *    parse, chunking, indexing, one transaction. Prints pages per second and the parser
 *    process's peak memory.
 * 1a. Many short pasted documents (`small`: `--small` of them, 16 requests in flight) through the
 *    API, with the worker's defaults, from the first ingestDocument until all are COMPLETED:
 *    documents per second, and the worker's CPU per document.
 * 1b. The same for a scanned PDF (every page an image: the large PDF rendered at 200 dpi, needs
 *    tesseract and pdftoppm), read by OCR with the worker's defaults (OCR_CONCURRENCY: half the
 *    cores). Prints pages per second and the parser's peak memory, its OCR programs included.
 * 2. Delivery delay of task events: opens N subscriptions (five per task over N/5 tasks, on
 *    separate connections), then publishes progress events for random tasks as a worker would
 *    (write the row, publish the event) and measures publish -> subscriber receipt, p50/p99.
 *
 * --cpu-prof <dir>: the router, the worker and the subgraphs write <dir>/<script>-<pid>.cpuprofile when they stop (open it in Chrome's
 * DevTools or speedscope). Every figure is printed with the load average: the machine is shared.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startTestStack, type TestStack } from '../tests/support/stack.js';
import { TASK_FIELDS, createCourse, ingest, upload, waitForTask } from '../tests/support/ingest.js';
import { makeLargePdf, scanPdf } from '../tests/support/pdf-fixtures.js';
import { subscribe, type Subscription } from '../tests/support/ws.js';
import { bullConnection } from '../lib/redis.js';
import { createJobQueues } from '../lib/jobs/queues.js';
import { createTaskEventPublisher } from '../lib/tasks/events.js';
import { ensureDatabase } from './lib/database.js';
import { infraDown, infraEnv, infraUp } from './infra.js';
import { cpuMs, cpuReport, cpuSnapshot } from './lib/cpu.js';
import { profileEnv as profileEnvFor } from './lib/profile.js';

const { values } = parseArgs({
  options: {
    pages: { type: 'string', default: '352' },
    small: { type: 'string', default: '300' },
    'ocr-pages': { type: 'string', default: '20' },
    only: { type: 'string', default: 'book,corpus,small,ocr,events' },
    subscriptions: { type: 'string', default: '1000' },
    events: { type: 'string', default: '300' },
    'cpu-prof': { type: 'string' },
  },
});
const PAGES = Number(values.pages);
const SMALL = Number(values.small);
const OCR_PAGES = Number(values['ocr-pages']);
const PARTS = new Set(values.only.split(','));
const SUBSCRIPTIONS = Number(values.subscriptions);
const EVENTS = Number(values.events);
const PER_TASK = 5;
const CORPUS = resolve('../shared/corpus');
const profileEnv = profileEnvFor(values['cpu-prof'] ? resolve(values['cpu-prof']) : undefined);

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};
const load = () =>
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;

const started = (await infraUp('test')).started.length > 0;
const infra = infraEnv('test');
await ensureDatabase({ migrate: true, directUrl: infra.DIRECT_DATABASE_URL });
const db = new pg.Client({ connectionString: infra.DIRECT_DATABASE_URL });
await db.connect();

/** Waits until every task is terminal, reading PostgreSQL every 10 ms (finer than polling the API); the time it saw that. */
async function untilTerminal(ids: string[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM "Task" WHERE id = ANY($1::uuid[]) AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')`,
      [ids],
    );
    if (Number(rows[0]!.n) === ids.length) return performance.now();
    if (Date.now() > deadline) throw new Error(`${ids.length - Number(rows[0]!.n)} tasks not finished after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The longest PDF of the shared corpus, if it has at least 100 pages. */
async function corpusBook(): Promise<{ path: string; pages: number } | null> {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.toLowerCase().endsWith('.pdf')) files.push(path);
    }
  };
  try {
    walk(CORPUS);
  } catch {
    return null;
  }
  const pdfjs = await import('pdfjs-dist/legacy/build/pdf.mjs');
  let best: { path: string; pages: number } | null = null;
  for (const path of files) {
    try {
      const doc = await pdfjs.getDocument({ data: new Uint8Array(readFileSync(path)), verbosity: 0 }).promise;
      if (!best || doc.numPages > best.pages) best = { path, pages: doc.numPages };
      await doc.destroy();
    } catch {
      // encrypted, broken: not a book
    }
  }
  return best && best.pages >= 100 ? best : null;
}

async function withWorker<T>(worker: Record<string, string>, run: (stack: TestStack) => Promise<T>): Promise<T> {
  const stack = await startTestStack({
    workers: 1,
    router: { RATE_LIMIT_TEACHER: '1000000', ...profileEnv },
    subgraphs: profileEnv,
    worker: { PROGRESS_INTERVAL_MS: '250', ...worker, ...profileEnv },
  });
  try {
    return await run(stack);
  } finally {
    await stack.stop();
  }
}

// Part 1: one worker, one large PDF.
async function benchBook(label: string, pdf: Buffer, pages: number) {
  await withWorker({ WORKER_CONCURRENCY: '1' }, async (stack) => {
    const token = await stack.token(stack.user('bench'), 'TEACHER');
    const courseId = await createCourse(stack, token, 'Bench');
    const t0 = performance.now();
    const up = await upload(stack, token, pdf, 'book.pdf');
    const t1 = performance.now();
    const task = await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title: 'Book' });
    const t2 = await untilTerminal([task.id], 600_000);
    const done = await waitForTask(stack, token, task.id, 10_000);
    if (done.status !== 'COMPLETED') throw new Error(`ingestion ended ${done.status}: ${JSON.stringify(done.error)}`);
    const line = stack.services['worker-1']!.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find(
      (l) => l['msg'] === 'document ingested' && l['taskId'] === task.id,
    );
    const seconds = (t2 - t1) / 1000;
    console.log(`
ingestion, ${label} (${pages} pages, ${(pdf.length / 1e6).toFixed(1)} MB), one worker (WORKER_CONCURRENCY 1):`);
    console.log(
      `  ingestDocument to COMPLETED: ${seconds.toFixed(2)} s, ${(pages / seconds).toFixed(1)} pages/s, ${done.document?.chunkCount} chunks (${load()})`,
    );
    console.log(`  with the upload: ${((t2 - t0) / 1000).toFixed(2)} s, ${(pages / ((t2 - t0) / 1000)).toFixed(1)} pages/s`);
    console.log(
      `  parser peak RSS ${line?.['peakRssMb'] ?? '?'} MB; parse ${line?.['parseMs'] ?? '?'} ms, after the parse ${line?.['saveMs'] ?? '?'} ms`,
    );
  });
}

if (PARTS.has('book')) await benchBook(`a ${PAGES}-page PDF made at run time`, await makeLargePdf(PAGES), PAGES);
if (PARTS.has('corpus')) {
  const book = await corpusBook();
  if (book) await benchBook(book.path, readFileSync(book.path), book.pages);
  else
    console.log(`
ingestion of a real book: skipped, ${CORPUS} has no PDF of 100 pages or more`);
}

// Part 1a: short pasted texts through the API, the worker's defaults.
if (PARTS.has('small')) {
  await withWorker({}, async (stack) => {
    const token = await stack.token(stack.user('bench'), 'TEACHER');
    const courseId = await createCourse(stack, token, 'Bench small');
    const texts = Array.from(
      { length: SMALL },
      (_, i) =>
        `# Note ${i}\n\nPhotosynthesis turns light into chemical energy (note ${i}). ` +
        'Chlorophyll absorbs red and blue light; the Calvin cycle fixes carbon dioxide into sugars. '.repeat(3),
    );
    // Warm up (first requests load code paths and connections), not timed.
    const warm = await Promise.all(texts.slice(0, 8).map((text, i) => ingest(stack, token, { courseId, title: `Warm ${i}`, text })));
    await untilTerminal(
      warm.map((t) => t.id),
      60_000,
    );
    const pid = stack.services['worker-1']!.child.pid;
    const cpu0 = cpuMs(pid);
    const before = cpuSnapshot();
    const ids: string[] = [];
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < texts.length) {
          const i = next++;
          ids.push((await ingest(stack, token, { courseId, title: `Note ${i}`, text: texts[i] })).id);
        }
      }),
    );
    const t1 = performance.now();
    const t2 = await untilTerminal(ids, 600_000);
    const cpu = cpuMs(pid) - cpu0;
    const after = cpuSnapshot();
    const { rows } = await db.query<{ status: string; n: string }>(
      `SELECT status, count(*) AS n FROM "Task" WHERE id = ANY($1::uuid[]) GROUP BY status`,
      [ids],
    );
    const seconds = (t2 - t0) / 1000;
    console.log(`
ingestion, ${SMALL} short pasted documents (~${texts[0]!.length} characters), 16 requests in flight, one worker:`);
    console.log(
      `  ${seconds.toFixed(2)} s, ${(SMALL / seconds).toFixed(1)} documents/s (requests done at ${((t1 - t0) / 1000).toFixed(2)} s); ` +
        `worker CPU ${(cpu / SMALL).toFixed(1)} ms per document (${load()})`,
    );
    console.log(`  ${rows.map((r) => `${r.status} ${r.n}`).join(', ')}`);
    const names = new Map([
      [process.pid, 'bench client'],
      ...Object.values(stack.services).map((x) => [x.child.pid!, x.name] as [number, string]),
    ]);
    console.log(cpuReport(before, after, names, { count: SMALL, unit: 'document', others: ['bench client'] }));
    // Where a job's time goes: in its handler (the worker's logs), or between jobs (BullMQ, the queue).
    const logged = stack.services['worker-1']!.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const starts = new Map<unknown, number>();
    const handler: number[] = [];
    for (const l of logged) {
      if (l['msg'] === 'job started') starts.set(l['jobId'], Date.parse(String(l['time'])));
      if (l['msg'] === 'job finished' && starts.has(l['jobId'])) handler.push(Date.parse(String(l['time'])) - starts.get(l['jobId'])!);
    }
    if (handler.length)
      console.log(
        `  a job's handler (worker logs, ${handler.length} jobs): p50 ${quantile(handler, 0.5).toFixed(0)} ms, p95 ${quantile(handler, 0.95).toFixed(0)} ms`,
      );
    const problems = logged.filter((l) => Number(l['level']) >= 40);
    if (problems.length) console.log(`  worker warnings/errors: ${problems.length}, first: ${JSON.stringify(problems[0]).slice(0, 600)}`);
  });
}

// Part 1b: one worker, a scanned PDF read by OCR.
if (PARTS.has('ocr')) {
  const stack = await startTestStack({
    workers: 1,
    router: { RATE_LIMIT_TEACHER: '1000000' },
    worker: { PROGRESS_INTERVAL_MS: '250', WORKER_CONCURRENCY: '1', OCR_ENABLED: 'true', ...profileEnv },
  });
  try {
    const token = await stack.token(stack.user('bench'), 'TEACHER');
    const courseId = await createCourse(stack, token, 'Bench OCR');
    const pdf = await scanPdf(makeLargePdf(OCR_PAGES));
    const t0 = performance.now();
    const up = await upload(stack, token, pdf, 'scanned.pdf');
    const task = await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title: 'Scanned' });
    const done = await waitForTask(stack, token, task.id, 1_200_000);
    const seconds = (performance.now() - t0) / 1000;
    const logged = stack.services['worker-1']!.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    if (done.status !== 'COMPLETED') {
      for (const l of logged) if (Number(l['level']) >= 40) console.error(JSON.stringify(l).slice(0, 1000));
      throw new Error(`ingestion ended ${done.status}: ${JSON.stringify(done.error)}`);
    }
    const line = logged.find((l) => l['msg'] === 'document ingested' && l['taskId'] === task.id);
    console.log(
      `\nOCR, ${OCR_PAGES}-page scanned PDF (${(pdf.length / 1e6).toFixed(1)} MB, 200 dpi images), end to end, one worker (WORKER_CONCURRENCY 1):`,
    );
    console.log(`  ${seconds.toFixed(2)} s, ${(OCR_PAGES / seconds).toFixed(2)} pages/s, ${done.document?.chunkCount} chunks`);
    console.log(`  ${done.message}`);
    console.log(
      `  parser peak RSS ${line?.['peakRssMb'] ?? '?'} MB (with its OCR programs); parse ${line?.['parseMs'] ?? '?'} ms, after the parse ${line?.['saveMs'] ?? '?'} ms`,
    );
  } finally {
    await stack.stop();
  }
}

// Part 2: no workers, so tasks stay put and every event comes from here, timed.
if (PARTS.has('events')) {
  const stack = await startTestStack({ workers: 0, router: { RATE_LIMIT_TEACHER: '1000000', WS_MAX_CONNECTIONS_PER_USER: '100000' } });
  const publisher = createTaskEventPublisher(bullConnection(infra.REDIS_URL));
  const subs: Subscription<{ taskUpdated: { id: string; progress: number } }>[] = [];
  // These tasks never run: their jobs and rows go at the end, or the next run's worker would take
  // the jobs (their texts' files are gone with this stack) and fail them three times each.
  const tasks: string[] = [];
  let courseId = '';
  try {
    const owner = stack.user('fanout');
    const token = await stack.token(owner, 'TEACHER');
    courseId = await createCourse(stack, token, 'Fan-out');
    for (let i = 0; i < Math.ceil(SUBSCRIPTIONS / PER_TASK); i++)
      tasks.push((await ingest(stack, token, { courseId, title: `T${i}`, text: `Task ${i}` })).id);
    await db.query(`UPDATE "Task" SET status = 'RUNNING' WHERE id = ANY($1::uuid[])`, [tasks]);
    const received = new Map<string, number[]>(); // "taskId|progress" -> receipt times
    for (let i = 0; i < SUBSCRIPTIONS; i++) {
      const taskId = tasks[i % tasks.length]!;
      const sub = subscribe<{ taskUpdated: { id: string; progress: number } }>(
        stack.routerUrl,
        token,
        `subscription($id: ID!) { taskUpdated(id: $id) { ${TASK_FIELDS} } }`,
        { id: taskId },
      );
      subs.push(sub);
      sub.client.on('message', (m) => {
        if (m.type !== 'next') return;
        const t = (m.payload.data as { taskUpdated?: { id: string; progress: number } } | undefined)?.taskUpdated;
        if (t) received.set(`${t.id}|${t.progress}`, [...(received.get(`${t.id}|${t.progress}`) ?? []), performance.now()]);
      });
    }
    await Promise.all(subs.map((s) => s.until(() => true, 120_000)));
    console.log(
      `\nevent delivery, ${SUBSCRIPTIONS} open subscriptions (${PER_TASK} per task over ${tasks.length} tasks, one connection each):`,
    );

    const sent: { key: string; at: number }[] = [];
    for (let i = 1; i <= EVENTS; i++) {
      const taskId = tasks[Math.floor(Math.random() * tasks.length)]!;
      const progress = Math.round((i / (EVENTS + 1)) * 1e6) / 1e6;
      await db.query(`UPDATE "Task" SET progress = $2 WHERE id = $1`, [taskId, progress]);
      const at = performance.now();
      await publisher.publish({ taskId, ownerId: owner, courseId, status: 'RUNNING', progress });
      sent.push({ key: `${taskId}|${progress}`, at });
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 3000));
    const perEvent = new Map<number, number>();
    for (const { key } of sent) perEvent.set(received.get(key)?.length ?? 0, (perEvent.get(received.get(key)?.length ?? 0) ?? 0) + 1);
    console.log(
      `  deliveries per event: ${[...perEvent]
        .sort((a, b) => a[0] - b[0])
        .map(([n, c]) => `${n}x${c}`)
        .join(' ')}`,
    );
    const delays = sent.flatMap(({ key, at }) => (received.get(key) ?? []).map((t) => t - at));
    const expected = sent.length * PER_TASK;
    console.log(`  ${sent.length} events at ~50/s -> ${delays.length}/${expected} deliveries`);
    console.log(
      `  publish -> subscriber: p50 ${quantile(delays, 0.5).toFixed(1)} ms, p99 ${quantile(delays, 0.99).toFixed(1)} ms, max ${Math.max(...delays).toFixed(1)} ms (${load()})`,
    );
  } finally {
    await Promise.all(subs.map((s) => s.dispose()));
    await publisher.close();
    const queues = createJobQueues(bullConnection(infra.REDIS_URL), () => {});
    await Promise.all(tasks.map((id) => queues.removeIfWaiting('INGEST_DOCUMENT', id))).finally(() => queues.close());
    if (courseId) await db.query(`DELETE FROM "Course" WHERE id = $1::uuid`, [courseId]);
    await stack.stop();
  }
}
await db.end();
if (started) await infraDown('test');
