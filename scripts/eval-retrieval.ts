/**
 * npm run eval:retrieval -- <BEIR dataset dir> [--workers 2]
 * Ingests the corpus through the real ingestion path into a fresh course, runs every judged
 * query through the search API, and prints nDCG@10, recall@100 and search latency p50/p95.
 */
import { parseArgs } from 'node:util';
import { startTestStack } from '../tests/support/stack.js';
import { ensureDatabase } from './lib/database.js';
import { evaluate } from './lib/eval-retrieval.js';
import { infraDown, infraEnv, infraUp } from './infra.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { workers: { type: 'string', default: '2' } } });
const dir = positionals[0];
if (!dir) {
  console.error('usage: npm run eval:retrieval -- <dataset dir containing corpus.jsonl, queries.jsonl, qrels/test.tsv>');
  process.exit(2);
}
const started = (await infraUp('test')).started.length > 0;
await ensureDatabase({ migrate: true, directUrl: infraEnv('test').DIRECT_DATABASE_URL });
const stack = await startTestStack({
  workers: Number(values.workers),
  router: { RATE_LIMIT_TEACHER: '100000000' },
  worker: { WORKER_CONCURRENCY: '4', PROGRESS_INTERVAL_MS: '1000' },
});
try {
  const token = await stack.token(stack.user('eval'), 'TEACHER');
  const r = await evaluate(stack, token, dir, { log: (l) => console.log(l) });
  console.log(`\n${dir}: ${r.documents} documents, ${r.queries} judged queries (lexical BM25, embedded store)`);
  console.log(`  nDCG@10    ${r.ndcg10.toFixed(3)}`);
  console.log(`  recall@100 ${r.recall100.toFixed(3)}`);
  console.log(`  search latency through the router: p50 ${r.latencyP50Ms.toFixed(1)} ms, p95 ${r.latencyP95Ms.toFixed(1)} ms`);
  console.log(`  ingestion: ${r.ingestSeconds.toFixed(1)} s (${(r.documents / r.ingestSeconds).toFixed(1)} documents/s)`);
} finally {
  await stack.stop();
  if (started) await infraDown('test');
}
