/**
 * npm run bench:search [-- --sizes 10000,100000 --queries 300]
 * The embedded store at scale: for each size, one course of synthetic chunks (Zipf-distributed
 * vocabulary, ~150 words a chunk), indexed the way the worker does it (tokenise, hash, postings
 * in the chunks' transaction), then random 2-4 word queries. Prints indexing throughput
 * (chunks/s) and search latency p50/p95 at the store (the SQL ranking), and through the rag
 * subgraph's code path (ranking + loading passages).
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { createPrisma } from '../lib/db/client.js';
import { createRetrieval } from '../lib/search/retrieval.js';
import { ensureDatabase } from './lib/database.js';
import { quantile } from './lib/ir-metrics.js';
import { infraDown, infraEnv, infraUp } from './infra.js';

const { values } = parseArgs({
  options: { sizes: { type: 'string', default: '10000,100000' }, queries: { type: 'string', default: '300' } },
});
const SIZES = values.sizes.split(',').map(Number);
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
const retrieval = await createRetrieval(
  prisma,
  { VECTOR_STORE: 'embedded', QDRANT_COLLECTION: 'x', QDRANT_SHARDS: 1, QDRANT_REPLICATION_FACTOR: 1, QDRANT_WRITE_CONSISTENCY_FACTOR: 1 },
  pino({ level: 'silent' }),
);

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

    const store: number[] = [];
    const withPassages: number[] = [];
    for (let q = 0; q < QUERIES; q++) {
      const query = sentence(2 + Math.floor(rand() * 3));
      const a = performance.now();
      const ranked = await retrieval.search({ courseId, query, limit: 10 });
      const b = performance.now();
      await prisma.chunk.findMany({ where: { id: { in: ranked.map((r) => r.id) }, courseId } });
      const c = performance.now();
      store.push(b - a);
      withPassages.push(c - a);
    }
    console.log(`\nembedded store, one course of ${size.toLocaleString('en')} chunks (${postings.toLocaleString('en')} postings):`);
    console.log(
      `  indexing: ${(size / seconds).toFixed(0)} chunks/s (${seconds.toFixed(1)} s, tokenise + hash + write in the chunks' transactions)`,
    );
    console.log(`  search (${QUERIES} queries of 2-4 Zipf-distributed words, top 10):`);
    console.log(`    ranking      p50 ${quantile(store, 0.5).toFixed(1)} ms, p95 ${quantile(store, 0.95).toFixed(1)} ms`);
    console.log(`    + passages   p50 ${quantile(withPassages, 0.5).toFixed(1)} ms, p95 ${quantile(withPassages, 0.95).toFixed(1)} ms`);
    await prisma.course.delete({ where: { id: courseId } });
  }
} finally {
  await prisma.$disconnect();
  if (started) await infraDown('test');
}
