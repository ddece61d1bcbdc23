import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCourse, ingest, waitForTask } from '../../tests/support/ingest.js';
import type { TestStack } from '../../tests/support/stack.js';
import { ndcgAtK, parseQrels, quantile, recallAtK } from './ir-metrics.js';

export interface EvalResult {
  documents: number;
  queries: number;
  ndcg10: number;
  recall100: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  ingestSeconds: number;
}

const jsonl = <T>(path: string): T[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);

/**
 * A BEIR collection (corpus.jsonl, queries.jsonl, qrels/test.tsv) through the real system:
 * each corpus entry is ingested as its own document (title = corpus id) into a fresh course,
 * every judged query goes through the search API, passages are reduced to documents (best
 * passage wins) and scored.
 */
export async function evaluate(
  stack: TestStack,
  token: string,
  dir: string,
  opts: { concurrency?: number; log?: (line: string) => void } = {},
): Promise<EvalResult> {
  const log = opts.log ?? (() => {});
  const corpus = jsonl<{ _id: string; title?: string; text: string }>(join(dir, 'corpus.jsonl'));
  const queries = new Map(jsonl<{ _id: string; text: string }>(join(dir, 'queries.jsonl')).map((q) => [q._id, q.text]));
  const qrels = parseQrels(readFileSync(join(dir, 'qrels', 'test.tsv'), 'utf8'));
  const courseId = await createCourse(stack, token, `BEIR ${dir}`);

  const started = performance.now();
  const concurrency = opts.concurrency ?? 16;
  const taskIds: string[] = [];
  for (let i = 0; i < corpus.length; i += concurrency) {
    const batch = corpus.slice(i, i + concurrency);
    const tasks = await Promise.all(
      batch.map((doc) =>
        ingest(stack, token, {
          courseId,
          title: doc._id,
          text: [doc.title, doc.text].filter(Boolean).join('\n\n') || ' ',
          format: 'TEXT',
          idempotencyKey: `beir:${courseId}:${doc._id}`,
        }),
      ),
    );
    taskIds.push(...tasks.map((t) => t.id));
    if ((i / concurrency) % 50 === 0) log(`  queued ${Math.min(i + concurrency, corpus.length)} of ${corpus.length} documents`);
  }
  for (let i = 0; i < taskIds.length; i += 50) {
    const done = await Promise.all(taskIds.slice(i, i + 50).map((id) => waitForTask(stack, token, id, 3_600_000)));
    const failed = done.filter((t) => t.status !== 'COMPLETED');
    if (failed.length) throw new Error(`${failed.length} documents failed to ingest: ${JSON.stringify(failed[0]?.error)}`);
  }
  const ingestSeconds = (performance.now() - started) / 1000;
  log(`  ingested ${corpus.length} documents in ${ingestSeconds.toFixed(1)} s`);

  const ndcg: number[] = [];
  const recall: number[] = [];
  const latency: number[] = [];
  for (const [queryId, judged] of qrels) {
    const text = queries.get(queryId);
    if (!text) continue;
    const t0 = performance.now();
    const res = await stack.gql<{ search: { score: number; document: { title: string } }[] }>(
      'query($c: ID!, $q: String!) { search(courseId: $c, query: $q, limit: 100) { score document { title } } }',
      { c: courseId, q: text.slice(0, 1000) },
      { token },
    );
    latency.push(performance.now() - t0);
    if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
    const ranked: string[] = [];
    for (const p of res.body.data!.search) if (!ranked.includes(p.document.title)) ranked.push(p.document.title);
    ndcg.push(ndcgAtK(ranked, judged, 10));
    recall.push(recallAtK(ranked, judged, 100));
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  return {
    documents: corpus.length,
    queries: ndcg.length,
    ndcg10: mean(ndcg),
    recall100: mean(recall),
    latencyP50Ms: quantile(latency, 0.5),
    latencyP95Ms: quantile(latency, 0.95),
    ingestSeconds,
  };
}
