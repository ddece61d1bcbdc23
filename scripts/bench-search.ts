/**
 * npm run bench:search [-- --sizes 10000,100000 --queries 300 --compare --router-docs 1400]
 * The embedded store at scale: for each size, one course of synthetic chunks (Zipf-distributed
 * vocabulary, ~150 words a chunk), indexed the way the worker does it (tokenise, hash, postings
 * in the chunks' transaction), then random 2-4 word queries. Prints indexing throughput
 * (chunks/s), the in-memory index's first load (time, postings, bytes) and search latency
 * p50/p95 at the store (BM25 ranking from the in-memory index) and through the rag subgraph's
 * code path (ranking + loading passages). With --compare, every query is also ranked in SQL (the
 * ranking the index reproduces), alternately first and second, and both are printed side by side
 * with their ratio and whether they ranked the same.
 *
 * Then search end to end (`--router-docs`, 0 to skip): a course of that many short documents
 * (~150-word abstracts of the same vocabulary, the size of a public test collection such as
 * Cranfield's 1,400) pasted through the API and ingested by the worker, then `search` through
 * the router (JWT, limits, plan, the rag subgraph, passages): one client at a time, then four
 * at once, p50/p95; and the rag subgraph's own time for the same requests, from its logs.
 * `--cpu-prof <dir>`: the router's and the subgraphs' CPU profiles over that part.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { createPrisma } from '../lib/db/client.js';
import type { EmbeddedStore } from '../lib/search/embedded.js';
import { createRetrieval } from '../lib/search/retrieval.js';
import type { ScoredChunk } from '../lib/search/types.js';
import { ensureDatabase } from './lib/database.js';
import { quantile } from './lib/ir-metrics.js';
import { infraDown, infraEnv, infraUp } from './infra.js';
import { createCourse, ingest } from '../tests/support/ingest.js';
import { profileEnv } from './lib/profile.js';
import { logEntries, startTestStack } from '../tests/support/stack.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000' },
    queries: { type: 'string', default: '300' },
    compare: { type: 'boolean', default: false },
    'router-docs': { type: 'string', default: '1400' },
    /** CPU profiles of the router and the subgraphs over the end-to-end part, into this directory. */
    'cpu-prof': { type: 'string' },
  },
});
const SIZES = values.sizes
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const ROUTER_DOCS = Number(values['router-docs']);
const QUERIES = Number(values.queries);
const CHUNKS_PER_DOC = 200;

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(42);
const SYLLABLES = [
  'ka',
  'lo',
  'mi',
  'ne',
  'ru',
  'sa',
  'ti',
  'vo',
  'ze',
  'qua',
  'bri',
  'dor',
  'fen',
  'gal',
  'hul',
  'jor',
  'kel',
  'mon',
  'pra',
  'stu',
];
const VOCABULARY = Array.from({ length: 30_000 }, (_, i) => {
  let w = '';
  for (let n = i + 1; n > 0; n = Math.floor(n / SYLLABLES.length)) w += SYLLABLES[n % SYLLABLES.length];
  return w;
});
// Zipf(1.1) sampling through a cumulative table.
const weights = VOCABULARY.map((_, i) => 1 / Math.pow(i + 1, 1.1));
const total = weights.reduce((a, b) => a + b, 0);
const cumulative: number[] = [];
weights.reduce((acc, w, i) => (cumulative[i] = acc + w / total), 0);
const word = () => {
  const x = rand();
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return VOCABULARY[lo]!;
};
const sentence = (n: number) => Array.from({ length: n }, word).join(' ');

const started = (await infraUp('test')).started.length > 0;
const infra = infraEnv('test');
await ensureDatabase({ migrate: true, directUrl: infra.DIRECT_DATABASE_URL });
const prisma = createPrisma({ url: infra.DATABASE_URL, max: 10 });
const env = {
  VECTOR_STORE: 'embedded',
  QDRANT_COLLECTION: 'x',
  QDRANT_SHARDS: 1,
  QDRANT_REPLICATION_FACTOR: 1,
  QDRANT_WRITE_CONSISTENCY_FACTOR: 1,
} as const;
const retrieval = await createRetrieval(prisma, env, pino({ level: 'silent' }));
// The reference: BM25 ranked in SQL, the in-memory index off.
const inSql = await createRetrieval(prisma, { ...env, SEARCH_INDEX_MAX_BYTES: 0 }, pino({ level: 'silent' }));
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');
const ms = (xs: number[], q: number) => quantile(xs, q).toFixed(1);
/**
 * The same ranking: the same score at every rank, within 1e-12 (relative; ln and the order of a sum
 * may differ in the last bit). Where the chunks differ, their scores are equal: a tie, which
 * PostgreSQL may order either way (see the store's tests).
 */
const sameRanking = (a: ScoredChunk[], b: ScoredChunk[]) =>
  a.length === b.length && a.every((x, i) => Math.abs(x.score - b[i]!.score) <= 1e-12 * Math.abs(b[i]!.score));
const sameIds = (a: ScoredChunk[], b: ScoredChunk[]) => a.length === b.length && a.every((x, i) => x.id === b[i]!.id);
console.log(`load average at start: ${load()}`);

try {
  for (const size of SIZES) {
    const courseId = randomUUID();
    await prisma.course.create({ data: { id: courseId, title: `bench ${size}`, createdBy: 'bench' } });
    const t0 = performance.now();
    let postings = 0;
    for (let d = 0; d < size / CHUNKS_PER_DOC; d++) {
      const documentId = randomUUID();
      const chunks = Array.from({ length: CHUNKS_PER_DOC }, (_, i) => ({
        id: `${documentId}:${i}`,
        position: i,
        text: `${sentence(150)}.`,
      }));
      const points = await retrieval.pointsFor(courseId, documentId, chunks);
      postings += points.reduce((s, p) => s + p.terms.ids.length, 0);
      await prisma.$transaction(
        async (tx) => {
          await tx.document.create({
            data: {
              id: documentId,
              courseId,
              title: `d${d}`,
              format: 'TEXT',
              sizeBytes: 1,
              sha256: '-',
              blobKey: '-',
              uploadedBy: 'bench',
              status: 'READY',
            },
          });
          await tx.chunk.createMany({
            data: chunks.map((c, i) => ({
              id: c.id,
              documentId,
              courseId,
              position: i,
              text: c.text,
              pageStart: 1,
              pageEnd: 1,
              charStart: 0,
              charEnd: c.text.length,
              tokenCount: points[i]!.terms.length,
            })),
          });
          await retrieval.write(tx, courseId, documentId, points);
        },
        { timeout: 120_000 },
      );
    }
    const seconds = (performance.now() - t0) / 1000;
    // What autovacuum does soon after a bulk load: statistics, and the visibility map that index-only scans need.
    const direct = new pg.Client({ connectionString: infra.DIRECT_DATABASE_URL });
    await direct.connect();
    await direct.query('VACUUM (ANALYZE) "ChunkTerm"');
    await direct.end();

    const t1 = performance.now();
    const index = await (retrieval.store as EmbeddedStore).warmIndex(courseId);
    const loadSeconds = (performance.now() - t1) / 1000;

    const queries = Array.from({ length: QUERIES }, () => sentence(2 + Math.floor(rand() * 3)));
    const memory: number[] = [];
    const withPassages: number[] = [];
    const sql: number[] = [];
    let same = 0;
    let identical = 0;
    for (const [q, query] of queries.entries()) {
      // With --compare, the two rankings take turns going first.
      let reference: ScoredChunk[] | null = null;
      const rankInSql = async () => {
        const a = performance.now();
        const ranked = await inSql.search({ courseId, query, limit: 10 });
        sql.push(performance.now() - a);
        return ranked;
      };
      if (values.compare && q % 2 === 0) reference = await rankInSql();
      const a = performance.now();
      const ranked = await retrieval.search({ courseId, query, limit: 10 });
      const b = performance.now();
      await prisma.chunk.findMany({ where: { id: { in: ranked.map((r) => r.id) }, courseId } });
      const c = performance.now();
      memory.push(b - a);
      withPassages.push(c - a);
      if (values.compare && q % 2 === 1) reference = await rankInSql();
      if (reference && sameRanking(ranked, reference)) same++;
      if (reference && sameIds(ranked, reference)) identical++;
    }
    console.log(`\nembedded store, one course of ${size.toLocaleString('en')} chunks (${postings.toLocaleString('en')} postings):`);
    console.log(
      `  indexing: ${(size / seconds).toFixed(0)} chunks/s (${seconds.toFixed(1)} s, tokenise + hash + write in the chunks' transactions)`,
    );
    console.log(
      index
        ? `  in-memory index, first load: ${loadSeconds.toFixed(1)} s, ${index.postings.toLocaleString('en')} postings, ${(index.bytes / 1024 ** 2).toFixed(1)} MiB`
        : '  in-memory index: not loaded (larger than its memory bound): ranking in SQL',
    );
    console.log(`  search (${QUERIES} queries of 2-4 Zipf-distributed words, top 10; load average now ${load()}):`);
    if (values.compare) {
      console.log(`    ranking in SQL     p50 ${ms(sql, 0.5)} ms, p95 ${ms(sql, 0.95)} ms`);
      console.log(
        `    ranking in memory  p50 ${ms(memory, 0.5)} ms, p95 ${ms(memory, 0.95)} ms` +
          `  (SQL / memory: p50 ${(quantile(sql, 0.5) / quantile(memory, 0.5)).toFixed(0)}×, p95 ${(quantile(sql, 0.95) / quantile(memory, 0.95)).toFixed(0)}×)`,
      );
      console.log(
        `    same ranking as SQL: ${same} of ${QUERIES} queries (the same score at every rank); also the same chunks in the same order: ${identical} (the rest: equal scores in another order)`,
      );
    } else {
      console.log(`    ranking      p50 ${ms(memory, 0.5)} ms, p95 ${ms(memory, 0.95)} ms`);
    }
    console.log(`    + passages   p50 ${ms(withPassages, 0.5)} ms, p95 ${ms(withPassages, 0.95)} ms`);
    await prisma.course.delete({ where: { id: courseId } });
  }
  if (ROUTER_DOCS > 0) await throughRouter(ROUTER_DOCS);
} finally {
  await prisma.$disconnect();
  if (started) await infraDown('test');
}

/** Search through the router in a course of `docs` pasted documents (see the header). */
async function throughRouter(docs: number) {
  const profile = profileEnv(values['cpu-prof'] && resolve(values['cpu-prof']), 'exit');
  const stack = await startTestStack({
    workers: 1,
    router: { RATE_LIMIT_TEACHER: '1000000', ...profile },
    subgraphs: profile,
    startTimeoutMs: 60_000,
  });
  try {
    const token = await stack.token(stack.user('bench-search'), 'TEACHER');
    const courseId = await createCourse(stack, token, `bench search ${docs}`);
    const t0 = performance.now();
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < docs) {
          const i = next++;
          ids.push((await ingest(stack, token, { courseId, title: `Abstract ${i}`, text: `${sentence(150)}.` })).id);
        }
      }),
    );
    for (;;) {
      const rows = await prisma.task.count({ where: { id: { in: ids }, status: { in: ['COMPLETED', 'FAILED', 'CANCELLED'] } } });
      if (rows === ids.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const failed = await prisma.task.count({ where: { id: { in: ids }, status: { not: 'COMPLETED' } } });
    const ingestSeconds = (performance.now() - t0) / 1000;
    const direct = new pg.Client({ connectionString: infra.DIRECT_DATABASE_URL });
    await direct.connect();
    await direct.query('VACUUM (ANALYZE) "ChunkTerm", "Chunk"');
    await direct.end();

    const query =
      'query($c: ID!, $q: String!) { search(courseId: $c, query: $q, limit: 10) { chunkId score pageStart text document { id title } } }';
    const one = async (q: string) => {
      const a = performance.now();
      const res = await stack.gql<{ search: unknown[] }>(query, { c: courseId, q }, { token });
      if (res.body.errors || !res.body.data) throw new Error(`search failed: ${JSON.stringify(res.body.errors)}`);
      return { ms: performance.now() - a, hits: res.body.data.search.length };
    };
    for (let i = 0; i < 50; i++) await one(sentence(2 + Math.floor(rand() * 3))); // warm-up (the course's index loads)
    const queries = Array.from({ length: QUERIES }, () => sentence(2 + Math.floor(rand() * 3)));
    const linesBefore = stack.services['rag']!.lines.length;
    const sequential: number[] = [];
    let hits = 0;
    for (const q of queries) {
      const r = await one(q);
      sequential.push(r.ms);
      hits += r.hits;
    }
    // The rag subgraph's own time for those requests: its line per operation (whole milliseconds).
    const ragMs = logEntries(stack.services['rag']!.lines.slice(linesBefore))
      .filter((e) => e['msg'] === 'graphql operation' && typeof e['ms'] === 'number')
      .map((e) => e['ms'] as number);
    const concurrent: number[] = [];
    let k = 0;
    const tc = performance.now();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (k < queries.length) concurrent.push((await one(queries[k++]!)).ms);
      }),
    );
    const concurrentSeconds = (performance.now() - tc) / 1000;
    console.log(`\nsearch through the router, one course of ${docs} pasted documents (~150 words each):`);
    console.log(`  ingested through the API in ${ingestSeconds.toFixed(1)} s (${failed} not COMPLETED)`);
    console.log(
      `  one client at a time (${QUERIES} queries, ${(hits / QUERIES).toFixed(1)} passages each): p50 ${ms(sequential, 0.5)} ms, p95 ${ms(sequential, 0.95)} ms` +
        (ragMs.length ? `; of which the rag subgraph p50 ${ms(ragMs, 0.5)} ms, p95 ${ms(ragMs, 0.95)} ms (${ragMs.length} logged)` : ''),
    );
    console.log(
      `  four clients at once: p50 ${ms(concurrent, 0.5)} ms, p95 ${ms(concurrent, 0.95)} ms, ${(queries.length / concurrentSeconds).toFixed(0)} searches/s (load average ${load()})`,
    );
    await prisma.course.delete({ where: { id: courseId } });
  } finally {
    await stack.stop();
  }
}
