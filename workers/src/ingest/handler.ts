import { UnrecoverableError } from 'bullmq';
import type { BlobStore } from '@lib/blob/store.js';
import { Prisma, sqlOf, type Document, type PrismaClient } from '@lib/db/client.js';
import { runTask } from '@lib/tasks/run.js';
import type { TaskStore } from '@lib/tasks/store.js';
import type { EmbeddedStore } from '@lib/search/embedded.js';
import type { Retrieval } from '@lib/search/retrieval.js';
import { chunkIdOf, type ChunkPoint } from '@lib/search/types.js';
import { readOcr } from '../environment.js';
import type { Handler } from '../handlers.js';
import type { JobMetrics } from '../metrics.js';
import { createPageChunker } from './chunk.js';
import type { OcrOptions } from './ocr.js';
import { completionMessage } from './messages.js';
import { parseDocument, type ParseResult } from './parse.js';
import { IngestError, type Chunk } from './types.js';

export interface IngestConfig {
  maxPages: number;
  maxChars: number;
  parseTimeoutMs: number;
  parseMemoryMb: number;
  chunkTargetChars: number;
  chunkOverlapChars: number;
  progressIntervalMs: number;
  /**
   * OCR of PDF pages without a usable text layer; null: off. Absent: from the OCR_* variables
   * (`readOcr()`, probed once per process).
   */
  ocr?: OcrOptions | null;
}

export interface IngestDeps {
  prisma: PrismaClient;
  tasks: TaskStore;
  blobs: BlobStore;
  metrics: JobMetrics;
  config: IngestConfig;
  retrieval: Retrieval;
}

/** Chunks written to the embedded store per statement while a document is read. */
const WRITE_BATCH = 200;

const chunkText = (documentId: string) => (c: Chunk) => ({ id: chunkIdOf(documentId, c.position), position: c.position, text: c.text });

/** Chunk rows in one statement (arrays, unnest): a parameter per column, not per value. */
const chunkInsert = (courseId: string, documentId: string, chunks: Chunk[], points: ChunkPoint[]) => Prisma.sql`
    INSERT INTO "Chunk" (id, "documentId", "courseId", position, text, heading, "pageStart", "pageEnd", "charStart", "charEnd", "tokenCount")
    SELECT id, ${documentId}::uuid, ${courseId}::uuid, position, text, heading, ps, pe, cs, ce, tc
    FROM unnest(${chunks.map((c) => chunkIdOf(documentId, c.position))}::text[], ${chunks.map((c) => c.position)}::int[],
                ${chunks.map((c) => c.text)}::text[], ${chunks.map((c) => c.heading)}::text[],
                ${chunks.map((c) => c.pageStart)}::int[], ${chunks.map((c) => c.pageEnd)}::int[],
                ${chunks.map((c) => c.charStart)}::int[], ${chunks.map((c) => c.charEnd)}::int[],
                ${points.map((p) => p.terms.length)}::int[]) AS x(id, position, text, heading, ps, pe, cs, ce, tc)`;

/** The chunks, then (the embedded store) their postings: one statement for both when they fit in one. */
async function insertChunks(
  tx: Prisma.TransactionClient,
  embedded: EmbeddedStore | null,
  courseId: string,
  documentId: string,
  chunks: Chunk[],
  points: ChunkPoint[],
) {
  if (!chunks.length) return;
  const insert = chunkInsert(courseId, documentId, chunks, points);
  if (embedded) await embedded.appendIn(tx, courseId, documentId, points, insert);
  else await tx.$executeRaw(insert);
}

/**
 * Parses a document in a sandboxed child process, chunks it, and replaces the
 * document's chunks in one transaction with the task's completion. With the
 * embedded store (and no OCR) that transaction is open while the document is
 * read: each page is chunked as it arrives and the chunks are written in
 * batches, so parsing, indexing and inserting overlap; nothing is visible before
 * the commit, and the task row is locked only at the end (a cancel is never held
 * up). Safe to run twice (after a crash): the second run replaces what the first
 * wrote, and a cancelled task is never completed.
 */
/** Passages in one document past which the search tables' planner statistics are refreshed at once. */
const ANALYZE_AFTER_CHUNKS = 500;

export function createIngestHandler({ prisma, tasks, blobs, metrics, config, retrieval }: IngestDeps): Handler<'INGEST_DOCUMENT'> {
  const ocrOptions = (): OcrOptions | null => (config.ocr !== undefined ? config.ocr : readOcr().options);
  return (payload, ctx) => {
    const { taskId, documentId } = payload;
    const { log, signal } = ctx;
    let courseId = payload.courseId;
    return runTask(
      { prisma, tasks },
      {
        kind: 'INGEST_DOCUMENT',
        taskId,
        load: async () => {
          const [document] = await sqlOf(prisma)<Document>(Prisma.sql`SELECT * FROM "Document" WHERE id = ${documentId}::uuid`);
          if (!document || document.taskId !== taskId) return null;
          courseId = document.courseId;
          return document;
        },
        notFound: { message: 'The document was deleted before it could be read.', error: 'document not found' },
        cancelled: { message: 'Ingestion was cancelled.', log: 'ingestion stopped' },
        progressIntervalMs: config.progressIntervalMs,
        // A short document's run writes no progress: its RUNNING and its end say enough.
        progressAfterMs: config.progressIntervalMs,
        // Qdrant may already hold this run's points: the chunks they point to were never saved.
        onCancel: async () => {
          if (retrieval.store.kind !== 'embedded') await retrieval.store.deleteDocument(courseId, documentId);
        },
        onError: async (err) => {
          if (!(err instanceof IngestError)) return;
          await prisma.document.update({
            where: { id: documentId },
            data: { status: 'FAILED', errorCode: err.code, errorMessage: err.message },
          });
          await tasks.fail(taskId, err.code, err.message);
          metrics.failures.inc({ job: 'INGEST_DOCUMENT', code: err.code });
          log.info(
            { taskId, code: err.code, cause: err.cause === undefined ? undefined : String(err.cause).slice(0, 2000) },
            'document rejected',
          );
          throw new UnrecoverableError(err.code);
        },
      },
      ctx,
      async (document, { report, flush, complete, settleIfCancelled }) => {
        void report(0.02, 'Reading the document', true);
        const path = await blobs.localPath(document.blobKey);
        const started = Date.now();
        const ocr = document.format === 'PDF' ? ocrOptions() : null;
        const embedded = retrieval.store.kind === 'embedded' ? (retrieval.store as EmbeddedStore) : null;
        const chunker = createPageChunker(document.format, {
          targetChars: config.chunkTargetChars,
          overlapChars: config.chunkOverlapChars,
        });
        const chunks: Chunk[] = []; // all of them for Qdrant; the batch not yet written for the embedded store
        let chunkCount = 0;
        let pages = 1;
        let parseMs = 0;
        let parsed: ParseResult | undefined;

        // The embedded store: chunks are written as pages arrive, in batches, in the transaction that
        // completes the task (nothing is visible before it commits; a crash or a cancel rolls it all back).
        let writer: Promise<void> = Promise.resolve();
        const writeFailed = new AbortController();
        // Read first, written after (OCR possible, Qdrant, dense vectors): in the embedded store with
        // lexical vectors only, they are made from each batch of chunks while the rest of the document is
        // read, outside any transaction. Not for Qdrant: its sparse weights use the average passage length
        // over the whole document, so they are made once it is read.
        const madeAhead: ChunkPoint[] = [];
        let madeUpTo = 0;
        const makeAhead = embedded !== null && retrieval.dense === null;
        const writeBatch = (tx: Prisma.TransactionClient | null, all = false) => {
          if (!tx) {
            if (!makeAhead || (!all && chunks.length - madeUpTo < WRITE_BATCH) || chunks.length === madeUpTo) return;
            const batch = chunks.slice(madeUpTo);
            madeUpTo = chunks.length;
            writer = writer.then(async () => {
              if (writeFailed.signal.aborted) return;
              try {
                madeAhead.push(...(await retrieval.pointsFor(document.courseId, documentId, batch.map(chunkText(documentId)))));
              } catch (err) {
                writeFailed.abort(err);
              }
            });
            return;
          }
          if (!embedded || (!all && chunks.length < WRITE_BATCH) || chunks.length === 0) return;
          const batch = chunks.splice(0, chunks.length);
          writer = writer.then(async () => {
            if (writeFailed.signal.aborted) return;
            try {
              const points = await retrieval.pointsFor(document.courseId, documentId, batch.map(chunkText(documentId)));
              await insertChunks(tx, embedded, document.courseId, documentId, batch, points);
            } catch (err) {
              writeFailed.abort(err); // stops the parser: the transaction is lost anyway
            }
          });
        };

        /** Reads the document; with `tx`, writes its chunks meanwhile. */
        const read = async (tx: Prisma.TransactionClient | null) => {
          let received = 0;
          const reading = (pages: number) => 0.05 + 0.85 * (received / pages);
          const add = (more: Chunk[]) => {
            chunks.push(...more);
            chunkCount += more.length;
            writeBatch(tx);
          };
          parsed = await parseDocument({
            path,
            format: document.format,
            maxPages: config.maxPages,
            maxChars: config.maxChars,
            timeoutMs: config.parseTimeoutMs,
            memoryLimitMb: config.parseMemoryMb,
            // A PDF whose fonts do not map to letters yields garbage, not text: refuse it rather than index it.
            maxUnreadableShare: 0.5,
            signal: AbortSignal.any([signal, writeFailed.signal]),
            ocr,
            onPage: (page, pages, info) => {
              received = info.received;
              add(chunker.add({ page, text: info.text }));
              void report(reading(pages), `Reading page ${page} of ${pages}${info.ocr ? ' (OCR)' : ''}`);
            },
            onOcrPage: (page, pages) => void report(reading(pages), `Reading page ${page} of ${pages} (OCR)`),
          });
          metrics.parserPeakRss.observe(parsed.peakRssMb);
          parseMs = Date.now() - started;
          pages = parsed.pages.length === 0 ? 1 : Math.max(...parsed.pages.map((p) => p.page));
          add(chunker.finish(parsed));
          if (chunkCount === 0) throw new IngestError('NO_TEXT', 'No readable text was found in this document.');
          writeBatch(tx, true);
          await writer;
          if (writeFailed.signal.aborted) throw writeFailed.signal.reason;
          signal.throwIfAborted();
          await report(0.95, `Saving ${chunkCount} passages`, true);
          await flush();
        };

        // Streaming needs nothing but the database in the transaction: not with OCR (a parse can take
        // minutes) nor with an embeddings endpoint (its calls would hold the transaction, and a
        // PgBouncer connection, open for as long as the model takes). Then the document is read
        // first, its vectors made outside any transaction, and only the writes are in it.
        const streaming = embedded !== null && !ocr && retrieval.dense === null;
        let points: ChunkPoint[] = [];
        if (!streaming) {
          await read(null);
          points = makeAhead
            ? madeAhead
            : await retrieval.pointsFor(
                document.courseId,
                documentId,
                chunks.map(chunkText(documentId)),
                (done, total) => void report(0.9 + 0.05 * (done / total), `Embedding passages: ${done} of ${total}`),
              );
          signal.throwIfAborted();
          // Qdrant's points are written before the transaction; if the task is then found cancelled, they are removed again.
          if (!embedded) await retrieval.write(null, document.courseId, documentId, points);
        }

        const completed = await complete(
          async (tx) => {
            // The task completed (the gate: null if it is not RUNNING any more), the document READY and
            // the course's cached search results stale: one statement; then, read first, the chunks.
            const task = await tasks.completeIn(tx, taskId, completionMessage(chunkCount, pages, parsed!.ocr), [
              Prisma.sql`UPDATE "Course" SET "searchVersion" = "searchVersion" + 1 WHERE id = ${document.courseId}::uuid`,
              Prisma.sql`
                UPDATE "Document"
                SET status = 'READY', pages = ${pages}, "chunkCount" = ${chunkCount}, "errorCode" = NULL, "errorMessage" = NULL,
                    "ocrPages" = ${parsed!.ocr.pages}::int[], "ocrConfidence" = ${parsed!.ocr.confidence}::float8,
                    "ocrSkippedPages" = ${parsed!.ocr.skipped.map((s) => s.page)}::int[], "updatedAt" = ${new Date()}
                WHERE id = ${documentId}::uuid`,
            ]);
            if (task && !streaming) await insertChunks(tx, embedded, document.courseId, documentId, chunks, points);
            return task;
          },
          // Streaming, the transaction is open while the document is read.
          (streaming ? config.parseTimeoutMs : 0) + 120_000,
          async (tx) => {
            // A run before this one may have completed and been retried: its chunks go (their postings and vectors with them).
            // Postings have no foreign key to their chunk (lib/search/embedded.ts): they go by document too.
            // Chunks are only ever written by the transaction that makes the document READY: a document
            // still PROCESSING with no chunks counted has none (a statement less for every new document;
            // a run that committed meanwhile is caught below, its chunks colliding with these).
            if (document.status !== 'PROCESSING' || document.chunkCount > 0)
              await tx.$executeRaw`
                WITH postings AS (DELETE FROM "ChunkTerm" WHERE "documentId" = ${documentId}::uuid)
                DELETE FROM "Chunk" WHERE "documentId" = ${documentId}::uuid`;
            if (streaming) await read(tx);
          },
        ).catch(async (err: unknown) => {
          // Two runs of one job (a stalled lock taken over): the later one's inserts wait for the
          // first one's transaction, then collide with its chunks. The first one completed the task.
          if ((await tasks.get(taskId).catch(() => null))?.status === 'COMPLETED') return 'finished' as const;
          throw err;
        });
        if (completed === 'finished') {
          // Another run of the same job (a stalled lock taken over) may have completed it: its points stay.
          log.info({ taskId }, 'task already finished by another run');
          return 'skipped';
        }
        if (completed === 'cancelled') {
          if (retrieval.store.kind !== 'embedded') await retrieval.store.deleteDocument(document.courseId, documentId);
          await settleIfCancelled();
          log.info({ taskId }, 'task was cancelled before its chunks were saved');
          return 'cancelled';
        }
        log.info(
          {
            taskId,
            documentId,
            pages,
            chunks: chunkCount,
            streaming,
            parseMs,
            // From the end of the parse to the commit (streaming, most of the writing happened during the parse).
            saveMs: Date.now() - started - parseMs,
            peakRssMb: parsed!.peakRssMb,
            ...(parsed!.ocr.pages.length || parsed!.ocr.skipped.length || parsed!.ocr.blank.length
              ? {
                  ocrPages: parsed!.ocr.pages.length,
                  ocrConfidence: parsed!.ocr.confidence,
                  ocrSkipped: parsed!.ocr.skipped,
                  ocrBlank: parsed!.ocr.blank,
                }
              : {}),
          },
          'document ingested',
        );
        if (chunkCount >= ANALYZE_AFTER_CHUNKS) {
          // A large document can change the search tables' statistics a lot: until autovacuum's
          // analyze comes round, the planner would rank a course's first searches (in SQL, while its
          // in-memory index loads) with stale ones — seconds instead of milliseconds. Best effort.
          const t0 = Date.now();
          await prisma
            .$executeRawUnsafe('ANALYZE "Chunk", "ChunkTerm"')
            .then(() => log.info({ documentId, ms: Date.now() - t0 }, 'search tables analyzed'))
            .catch((err: unknown) => log.warn({ err, documentId }, 'ANALYZE after a large document failed'));
        }
        return 'completed';
      },
    );
  };
}
