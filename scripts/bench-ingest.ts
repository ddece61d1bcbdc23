/**
 * npm run bench:ingest [-- --pages 300 --ocr-pages 20 --subscriptions 1000 --events 300 --only ingest,ocr,events]
 *
 * 1. End-to-end ingestion of a large PDF made at run time: upload, ingestDocument, worker
 *    (sandboxed parse, chunking, one transaction), until the task is COMPLETED. Prints pages
 *    per second and the parser process's peak memory.
 * 1b. The same for a scanned PDF (every page an image: the large PDF rendered at 200 dpi, needs
 *    tesseract and pdftoppm), read by OCR with the worker's defaults (OCR_CONCURRENCY: half the
 *    cores). Prints pages per second and the parser's peak memory, its OCR programs included.
 * 2. Delivery delay of task events: opens N subscriptions (five per task over N/5 tasks, on
 *    separate connections), then publishes progress events for random tasks as a worker would
 *    (write the row, publish the event) and measures publish -> subscriber receipt, p50/p99.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startTestStack } from '../tests/support/stack.js';
import { TASK_FIELDS, createCourse, ingest, upload, waitForTask } from '../tests/support/ingest.js';
import { makeLargePdf, scanPdf } from '../tests/support/pdf-fixtures.js';
import { subscribe, type Subscription } from '../tests/support/ws.js';
import { bullConnection } from '../lib/redis.js';
import { createTaskEventPublisher } from '../lib/tasks/events.js';
import { ensureDatabase } from './lib/database.js';
import { infraDown, infraEnv, infraUp } from './infra.js';

const { values } = parseArgs({
  options: {
    pages: { type: 'string', default: '300' },
    'ocr-pages': { type: 'string', default: '20' },
    only: { type: 'string', default: 'ingest,ocr,events' },
    subscriptions: { type: 'string', default: '1000' },
    events: { type: 'string', default: '300' },
  },
});
const PAGES = Number(values.pages);
const OCR_PAGES = Number(values['ocr-pages']);
const PARTS = new Set(values.only.split(','));
const SUBSCRIPTIONS = Number(values.subscriptions);
const EVENTS = Number(values.events);
const PER_TASK = 5;

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

const started = (await infraUp('test')).started.length > 0;
const infra = infraEnv('test');
await ensureDatabase({ migrate: true, directUrl: infra.DIRECT_DATABASE_URL });

// Part 1: one worker, as many pages as asked.
if (PARTS.has('ingest')) {
  const stack = await startTestStack({
    workers: 1,
    router: { RATE_LIMIT_TEACHER: '1000000' },
    worker: { PROGRESS_INTERVAL_MS: '250', WORKER_CONCURRENCY: '1' },
  });
  try {
    const token = await stack.token(stack.user('bench'), 'TEACHER');
    const courseId = await createCourse(stack, token, 'Bench');
    const pdf = await makeLargePdf(PAGES);
    const t0 = performance.now();
    const up = await upload(stack, token, pdf, 'book.pdf');
    const task = await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title: 'Book' });
    const done = await waitForTask(stack, token, task.id, 600_000);
    const seconds = (performance.now() - t0) / 1000;
    if (done.status !== 'COMPLETED') throw new Error(`ingestion ended ${done.status}: ${JSON.stringify(done.error)}`);
    const line = stack.services['worker-1']!.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find(
      (l) => l['msg'] === 'document ingested' && l['taskId'] === task.id,
    );
    console.log(`\ningestion, ${PAGES}-page PDF (${(pdf.length / 1e6).toFixed(1)} MB), end to end (upload to COMPLETED), one worker:`);
    console.log(`  ${seconds.toFixed(2)} s, ${(PAGES / seconds).toFixed(1)} pages/s, ${done.document?.chunkCount} chunks`);
    console.log(
      `  parser peak RSS ${line?.['peakRssMb'] ?? '?'} MB; parse ${line?.['parseMs'] ?? '?'} ms, chunk+save ${line?.['saveMs'] ?? '?'} ms`,
    );
  } finally {
    await stack.stop();
  }
}

// Part 1b: one worker, a scanned PDF read by OCR.
if (PARTS.has('ocr')) {
  const stack = await startTestStack({
    workers: 1,
    router: { RATE_LIMIT_TEACHER: '1000000' },
    worker: { PROGRESS_INTERVAL_MS: '250', WORKER_CONCURRENCY: '1', OCR_ENABLED: 'true' },
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
      `  parser peak RSS ${line?.['peakRssMb'] ?? '?'} MB (with its OCR programs); parse ${line?.['parseMs'] ?? '?'} ms, chunk+save ${line?.['saveMs'] ?? '?'} ms`,
    );
  } finally {
    await stack.stop();
  }
}

// Part 2: no workers, so tasks stay put and every event comes from here, timed.
if (PARTS.has('events')) {
  const stack = await startTestStack({ workers: 0, router: { RATE_LIMIT_TEACHER: '1000000', WS_MAX_CONNECTIONS_PER_USER: '100000' } });
  const db = new pg.Client({ connectionString: infra.DIRECT_DATABASE_URL });
  await db.connect();
  const publisher = createTaskEventPublisher(bullConnection(infra.REDIS_URL));
  const subs: Subscription<{ taskUpdated: { id: string; progress: number } }>[] = [];
  try {
    const owner = stack.user('fanout');
    const token = await stack.token(owner, 'TEACHER');
    const courseId = await createCourse(stack, token, 'Fan-out');
    const tasks: string[] = [];
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
      `  publish -> subscriber: p50 ${quantile(delays, 0.5).toFixed(1)} ms, p99 ${quantile(delays, 0.99).toFixed(1)} ms, max ${Math.max(...delays).toFixed(1)} ms`,
    );
  } finally {
    await Promise.all(subs.map((s) => s.dispose()));
    await publisher.close();
    await db.end();
    await stack.stop();
  }
}
if (started) await infraDown('test');
