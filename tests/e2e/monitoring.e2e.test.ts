/**
 * Every dashboard panel and every recording rule returns data: a real Prometheus (Debian's,
 * scripts/lib/prometheus.ts) scrapes the running test stack's /metrics every second with the
 * jobs and rules of monitoring/, the test drives traffic that touches each metric (operations,
 * errors, refused tokens, rate limits, ingestion with a failing document, search, a
 * subscription, tutor answers from a model and a model error), then evaluates each expression
 * through Prometheus' HTTP API. An expression that returns nothing, or names a metric no
 * service exports, fails. Exporter panels (PostgreSQL, PgBouncer, Redis) cannot have data here:
 * they are listed and only their syntax is checked (tests/deploy/monitoring.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { dashboardExpressions } from '../../scripts/lib/dashboards.js';
import { findPrometheus, MONITORING_DIR, startPrometheus, type LocalPrometheus } from '../../scripts/lib/prometheus.js';
import { testInfra } from '../support/infra.js';
import { createCourse, ingest, upload, waitForTask } from '../support/ingest.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/openai-fake.js';
import { makeTextPdf } from '../support/pdf-fixtures.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { askAndWait, factCourse } from '../support/tutor.js';
import { subscribe, type Subscription } from '../support/ws.js';

const present = findPrometheus() !== null;
if (!present) console.warn('skipped: the monitoring test needs prometheus (apt-get install prometheus), which is absent');
const suite = present ? describe : describe.skip;

/** The rate window dashboards get from Grafana; with a 1 s scrape, 30 s holds plenty of samples. */
const RATE_INTERVAL = '30s';

/**
 * A Redis database of this file's own (the test profile's Redis, another index): test stacks of
 * other files, run at the same time by someone else, would otherwise take this stack's jobs
 * (BullMQ queues are shared by name) with their own workers.
 */
const OWN_REDIS = `${testInfra().REDIS_URL}/${1 + Math.floor(Math.random() * 15)}`;

const RECORDING = (
  parse(readFileSync(join(MONITORING_DIR, 'rules/recording.yml'), 'utf8')) as { groups: { rules: { record: string; expr: string }[] }[] }
).groups.flatMap((g) => g.rules);

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
  'inf',
  'nan',
]);

/** The metric names an expression reads (identifiers outside label matchers, groupings and strings, not functions). */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = [...stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .filter((m) => !/^\s*\(/.test(stripped.slice(m.index + m[0].length)) && !/[0-9.]$/.test(stripped.slice(0, m.index)))
    .map((m) => m[0])
    .filter((n) => !KEYWORDS.has(n.toLowerCase()));
  return [...new Set(names)];
}

suite('every dashboard panel and recording rule returns data from the running services', () => {
  let fake: FakeOpenAI;
  let stack: TestStack;
  let prometheus: LocalPrometheus;
  let dir: string;
  let subscription: Subscription<{ taskUpdated: { status: string } }> | undefined;

  beforeAll(async () => {
    // The model answers the first question; after that it fails (a server error, not retried).
    let calls = 0;
    fake = await startFakeOpenAI({
      chat: () =>
        ++calls === 1
          ? { text: 'The Eiffel Tower was completed in 1889 [1].', tokensPerSecond: 400 }
          : { error: { status: 500, message: 'the model is down' } },
    });
    stack = await startTestStack({
      // Admins get a tiny per-user limit here, so that one reaches it in a few requests.
      router: { RATE_LIMIT_ADMIN: '3', REDIS_URL: OWN_REDIS },
      subgraphs: { REDIS_URL: OWN_REDIS },
      worker: { LLM_URL: fake.url, LLM_MODEL: 'fake-tutor', LLM_MAX_RETRIES: '0', LLM_TIMEOUT_MS: '5000', REDIS_URL: OWN_REDIS },
    });
    dir = mkdtempSync(join(tmpdir(), 'prometheus-'));
    // Where each service's /metrics is (the router's is on its internal port).
    const hostPort = (name: string) => new URL(stack.services[name]!.opsUrl).host;
    prometheus = await startPrometheus({
      dir,
      targets: {
        router: [hostPort('router')],
        rag: [hostPort('rag')],
        chat: [hostPort('chat')],
        exam: [hostPort('exam')],
        tasks: [hostPort('tasks')],
        worker: [hostPort('worker-1')],
      },
      scrapeIntervalS: 1,
      evaluationIntervalS: 1,
    });

    // ---- Traffic that touches every metric the dashboards read.
    // Ingestion of a PDF (parser memory, job durations), search (cache miss, then hit), tutor answers.
    const course = await factCourse(stack);
    const search = 'query($c: ID!) { search(courseId: $c, query: "Eiffel tower", limit: 3) { chunkId } }';
    for (let i = 0; i < 2; i++) await stack.gql(search, { c: course.courseId }, { token: course.studentToken });
    const answered = await askAndWait(stack, course.studentToken, {
      courseId: course.courseId,
      question: 'When was the Eiffel Tower completed?',
    });
    expect(answered.engine).toBe('MODEL');
    // The same question again: the answer cache.
    await askAndWait(stack, course.studentToken, { courseId: course.courseId, question: 'When was the Eiffel Tower completed?' });
    const failed = await askAndWait(stack, course.studentToken, {
      courseId: course.courseId,
      question: 'When was the Eiffel Tower built?',
    });
    expect(failed.status).toBe('FAILED');

    // A document that fails: a job failure with its code.
    const teacherToken = course.teacherToken;
    const bad = await upload(stack, teacherToken, Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(2000, 0x41)]), 'broken.pdf');
    const task = await ingest(stack, teacherToken, { courseId: course.courseId, title: 'Broken', uploadId: bad.body.uploadId });
    expect((await waitForTask(stack, teacherToken, task.id)).status).toBe('FAILED');

    // Errors of several kinds: bad input, a refused token, the per-user rate limit.
    await stack.gql('mutation { createCourse(input: { title: "" }) { id } }', {}, { token: teacherToken });
    await stack.gql('{ myCourses { id } }', {}, { token: 'not-a-token' });
    const hasty = await stack.token(stack.user('hasty'), 'ADMIN');
    for (let i = 0; i < 5; i++) await stack.gql('query Hasty { myCourses { id } }', {}, { token: hasty });

    // A subscription, open while the expressions are evaluated, and a message on it.
    const another = await createCourse(stack, teacherToken, 'Subscribed');
    const pasted = await ingest(stack, teacherToken, {
      courseId: another,
      title: 'Short',
      text: '# Notes\n\nOhm’s law.',
      format: 'MARKDOWN',
    });
    subscription = subscribe(stack.routerUrl, teacherToken, 'subscription($id: ID!) { taskUpdated(id: $id) { status } }', {
      id: pasted.id,
    });
    await subscription.until((d) => d.taskUpdated.status === 'COMPLETED');
    const pdf = await makeTextPdf([['Another page to index.']]);
    const up = await upload(stack, teacherToken, pdf, 'more.pdf');
    await waitForTask(
      stack,
      teacherToken,
      (await ingest(stack, teacherToken, { courseId: another, title: 'More', uploadId: up.body.uploadId })).id,
    );
  }, 300_000);

  afterAll(async () => {
    await subscription?.dispose();
    await prometheus?.stop();
    await stack?.stop();
    await fake?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Evaluates until the expression returns something (scrapes and rule evaluations take a few seconds to catch up). */
  async function evaluate(expr: string, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = await prometheus.query(expr);
      if (result.length > 0 || Date.now() > deadline) return result;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  it('scrapes every service', async () => {
    const expected = ['chat', 'exam', 'rag', 'router', 'tasks', 'worker'];
    // Targets are scraped one after another: wait until each has been scraped once (bounded).
    const deadline = Date.now() + 60_000;
    let jobs: string[] = [];
    while (Date.now() < deadline) {
      jobs = (await prometheus.query('sum by (job) (up == 1)')).map((s) => String(s.metric['job'])).sort();
      if (jobs.length === expected.length) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(jobs).toEqual(expected);
  });

  it('evaluates every recording rule to data', async () => {
    const empty: string[] = [];
    for (const rule of RECORDING) if ((await evaluate(rule.record)).length === 0) empty.push(`${rule.record} = ${rule.expr}`);
    expect(empty).toEqual([]);
  }, 300_000);

  it('evaluates every dashboard expression (but the exporters’) to data, naming only metrics the services export', async () => {
    const expressions = dashboardExpressions();
    const skipped = expressions.filter((e) => e.source !== 'app');
    console.warn(
      `not evaluated here (no exporter, no Loki): ${skipped.length} expressions\n${skipped.map((e) => `  ${e.dashboard} / ${e.panel} [${e.source}]`).join('\n')}`,
    );
    const known = new Set([...(await prometheus.metricNames()), ...RECORDING.map((r) => r.record)]);
    const problems: string[] = [];
    for (const e of expressions.filter((x) => x.source === 'app')) {
      const expr = e.expr.replaceAll('$__rate_interval', RATE_INTERVAL);
      const unknown = metricNames(expr).filter((n) => !known.has(n));
      if (unknown.length) problems.push(`${e.dashboard} / ${e.panel}: no service exports ${unknown.join(', ')}`);
      else if ((await evaluate(expr)).length === 0) problems.push(`${e.dashboard} / ${e.panel}: no data for ${expr}`);
    }
    expect(problems).toEqual([]);
  }, 300_000);

  it('reads a metric name out of an expression, and only metric names', () => {
    expect(metricNames('sum by (service, le) (rate(graphql_request_duration_seconds_bucket{outcome!~"a|b"}[5m]))')).toEqual([
      'graphql_request_duration_seconds_bucket',
    ]);
    expect(metricNames('service:graphql_errors:rate5m / (service:graphql_requests:rate5m > 0) or up * 0')).toEqual([
      'service:graphql_errors:rate5m',
      'service:graphql_requests:rate5m',
      'up',
    ]);
    expect(metricNames('histogram_quantile(0.95, sum by (le) (rate(x_bucket[1m])))')).toEqual(['x_bucket']);
  });
});
