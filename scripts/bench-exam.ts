/**
 * npm run bench:exam [-- --pages 350 --questions 20 --runs 3 --max-passages 160 --redis-db 6]
 *
 * Exam generation, offline engine (no LLM_URL), end to end through the router:
 *
 * 1. A generated book of `--pages` pages (tests/support/pdf-fixtures.ts makeLargePdf) is uploaded
 *    and ingested through the API (timed apart: not part of the figure).
 * 2. `generateExam` for `--questions` questions of all four types, `--runs` times with different
 *    seeds: mutation sent -> COMPLETED received on `taskUpdated` (the worker reads the passages, a
 *    thread runs lib/exam's generator, the questions are saved with the task's completion). Target:
 *    ≤ 10 s each.
 * 3. The share of the generator's candidate questions that pass validation before any filtering
 *    (lib/exam generationStats) over the same passages the worker drew from (its spread sample of
 *    at most `--max-passages`, set on the worker too), with the rejections by rule.
 *
 * The stack runs on its own Redis database (`--redis-db`), so that other test runs' workers do not
 * take its jobs. Run it on an otherwise idle machine: it prints the load average.
 */
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createPrisma } from '../lib/db/client.js';
import { generationStats, QUESTION_TYPES } from '../lib/exam/index.js';
import { data, getExam, TASK_EXAM_FIELDS, type ExamTaskView } from '../tests/support/exam.js';
import { createCourse, ingest, upload, waitForTask } from '../tests/support/ingest.js';
import { makeLargePdf } from '../tests/support/pdf-fixtures.js';
import { logEntries, startTestStack } from '../tests/support/stack.js';
import { subscribe } from '../tests/support/ws.js';
import { loadPassages } from '../workers/src/exam/passages.js';
import { rejectionSummary } from '../workers/src/exam/report.js';
import { ensureDatabase } from './lib/database.js';
import { infraDown, infraEnv, infraUp } from './infra.js';

const { values } = parseArgs({
  options: {
    pages: { type: 'string', default: '350' },
    questions: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
    'max-passages': { type: 'string', default: '160' },
    'redis-db': { type: 'string', default: '6' },
  },
});
const PAGES = Number(values.pages);
const QUESTIONS = Number(values.questions);
const RUNS = Number(values.runs);
const MAX_PASSAGES = Number(values['max-passages']);
const TARGET_S = 10;
const TYPES = [...QUESTION_TYPES];

const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const started = (await infraUp('test')).started.length > 0;
const infra = infraEnv('test');
await ensureDatabase({ migrate: true, directUrl: infra.DIRECT_DATABASE_URL });
// testInfra() (tests/support/infra.ts) takes REDIS_URL from here: the stack uses its own Redis database.
process.env['REDIS_URL'] = `${infra.REDIS_URL}/${values['redis-db']}`;

console.log(
  `\nbench:exam: ${availableParallelism()} cores shared by this process, the router, four subgraphs, the worker, PostgreSQL, PgBouncer and Redis; load average ${load()}`,
);

const stack = await startTestStack({
  workers: 1,
  router: { RATE_LIMIT_TEACHER: '1000000' },
  worker: { PROGRESS_INTERVAL_MS: '250', EXAM_MAX_PASSAGES: String(MAX_PASSAGES), EXAM_ENGINE: 'offline' },
});
const prisma = createPrisma({ url: infra.DATABASE_URL, max: 2, applicationName: 'bench-exam' });
let failed = false;
try {
  const token = await stack.token(stack.user('bench-exam'), 'TEACHER');
  const courseId = await createCourse(stack, token, 'Bench: exams');
  const pdf = await makeLargePdf(PAGES);
  const t0 = performance.now();
  const up = await upload(stack, token, pdf, 'book.pdf');
  const ingested = await waitForTask(
    stack,
    token,
    (await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title: 'Book' })).id,
    900_000,
  );
  if (ingested.status !== 'COMPLETED') throw new Error(`ingestion ended ${ingested.status}: ${JSON.stringify(ingested.error)}`);
  console.log(
    `\n1. the book: ${PAGES} pages (${(pdf.length / 1e6).toFixed(1)} MB), ${ingested.document?.chunkCount} passages, ingested through the API in ${((performance.now() - t0) / 1000).toFixed(1)} s (not part of the figures below)`,
  );

  console.log(`\n2. generateExam, ${QUESTIONS} questions of all four types, offline engine: mutation sent -> COMPLETED on taskUpdated`);
  const seconds: number[] = [];
  let lastExam: { id: string; seed: number } | undefined;
  for (let run = 1; run <= RUNS; run++) {
    const seed = run;
    const socket = subscribe<{ myTaskUpdated: ExamTaskView }>(
      stack.routerUrl,
      token,
      `subscription { myTaskUpdated { ${TASK_EXAM_FIELDS} } }`,
    );
    await new Promise((r) => setTimeout(r, 300)); // the subscription is open before the mutation
    const sent = performance.now();
    const res = await stack.gql<{ generateExam: { id: string } }>(
      'mutation($i: GenerateExamInput!) { generateExam(input: $i) { id } }',
      { i: { courseId, title: `Bench ${run}`, questionCount: QUESTIONS, types: TYPES, seed } },
      { token },
    );
    const taskId = data(res).generateExam.id;
    const done = await socket.until(
      (d) => d.myTaskUpdated.id === taskId && ['COMPLETED', 'FAILED'].includes(d.myTaskUpdated.status),
      600_000,
    );
    const s = (performance.now() - sent) / 1000;
    await socket.dispose();
    const task = done.myTaskUpdated;
    if (task.status !== 'COMPLETED') throw new Error(`generation ended ${task.status}: ${JSON.stringify(task.error)}`);
    const exam = data(await getExam(stack, token, task.exam!.id)).exam;
    const line = logEntries(stack.services['worker-1']!.lines).find((l) => l['msg'] === 'exam generated' && l['taskId'] === taskId);
    seconds.push(s);
    lastExam = { id: exam.id, seed };
    console.log(
      `  run ${run} (seed ${seed}): ${s.toFixed(2)} s  ${s <= TARGET_S ? 'PASS' : 'MISS'} (target ≤ ${TARGET_S} s); worker ${((line?.['ms'] as number) / 1000).toFixed(2)} s; ` +
        `"${task.message}"; ${exam.generation!.passages} passages drawn from, ${exam.generation!.candidates} candidates checked`,
    );
  }
  const m = median(seconds);
  console.log(
    `  median ${m.toFixed(2)} s, max ${Math.max(...seconds).toFixed(2)} s: ${Math.max(...seconds) <= TARGET_S ? 'PASS' : 'MISS'}`,
  );

  // 3. The same passages the worker drew from for the last run (same course, same seed, same limit).
  const { passages, total } = await loadPassages(prisma, { courseId, documentIds: [], seed: lastExam!.seed }, MAX_PASSAGES);
  const t1 = performance.now();
  const stats = generationStats({ passages, types: TYPES, seed: lastExam!.seed });
  const statsS = (performance.now() - t1) / 1000;
  console.log(
    `\n3. validation before filtering (lib/exam generationStats over the ${passages.length} passages of run ${RUNS}, of ${total}):`,
  );
  console.log(
    `  ${stats.valid} of ${stats.candidates} candidate questions pass validation as built: ${(stats.share * 100).toFixed(1)} % (${stats.sentences} usable sentences; computed in ${statsS.toFixed(1)} s)`,
  );
  console.log(`  failed checks: ${rejectionSummary(stats.rejected as Record<string, number>, 10) || 'none'}`);
  console.log(`\nsummary (load average at the end ${load()}):`);
  console.log(
    `  offline generation, ${QUESTIONS} questions, ${PAGES}-page book, end to end: median ${m.toFixed(2)} s (target ≤ ${TARGET_S} s)`,
  );
  console.log(`  candidates valid before filtering: ${(stats.share * 100).toFixed(1)} %`);
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  await prisma.$disconnect();
  await stack.stop();
  if (started) await infraDown('test');
}
if (failed) process.exit(1);
