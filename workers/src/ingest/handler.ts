import { UnrecoverableError } from 'bullmq';
import type { BlobStore } from '@lib/blob/store.js';
import type { PrismaClient } from '@lib/db/client.js';
import { runTask } from '@lib/tasks/run.js';
import type { TaskStore } from '@lib/tasks/store.js';
import type { Retrieval } from '@lib/search/retrieval.js';
import { readOcr } from '../environment.js';
import type { Handler } from '../handlers.js';
import type { JobMetrics } from '../metrics.js';
import { chunkDocument } from './chunk.js';
import type { OcrOptions } from './ocr.js';
import { completionMessage } from './messages.js';
import { parseDocument } from './parse.js';
import { IngestError } from './types.js';

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

/**
 * Parses a document in a sandboxed child process, chunks it, and replaces the
 * document's chunks in one transaction with the task's completion. Safe to run
 * twice (after a crash): the second run replaces what the first wrote, and a
 * cancelled task is never completed.
 */
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
          const document = await prisma.document.findUnique({ where: { id: documentId } });
          if (!document || document.taskId !== taskId) return null;
          courseId = document.courseId;
          return document;
        },
        notFound: { message: 'The document was deleted before it could be read.', error: 'document not found' },
        cancelled: { message: 'Ingestion was cancelled.', log: 'ingestion stopped' },
        progressIntervalMs: config.progressIntervalMs,
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
        await report(0.02, 'Reading the document', true);
        const path = await blobs.localPath(document.blobKey);
        const parseStarted = Date.now();
        let received = 0;
        const reading = (pages: number) => 0.05 + 0.8 * (received / pages);
        const parsed = await parseDocument({
          path,
          format: document.format,
          maxPages: config.maxPages,
          maxChars: config.maxChars,
          timeoutMs: config.parseTimeoutMs,
          memoryLimitMb: config.parseMemoryMb,
          // A PDF whose fonts do not map to letters yields garbage, not text: refuse it rather than index it.
          maxUnreadableShare: 0.5,
          signal,
          ocr: document.format === 'PDF' ? ocrOptions() : null,
          onPage: (page, pages, info) => {
            received = info.received;
            void report(reading(pages), `Reading page ${page} of ${pages}${info.ocr ? ' (OCR)' : ''}`);
          },
          onOcrPage: (page, pages) => void report(reading(pages), `Reading page ${page} of ${pages} (OCR)`),
        });
        metrics.parserPeakRss.observe(parsed.peakRssMb);
        const parseMs = Date.now() - parseStarted;
        const saveStarted = Date.now();
        await flush();
        await report(0.88, 'Splitting into passages', true);
        const chunks = chunkDocument(parsed, { targetChars: config.chunkTargetChars, overlapChars: config.chunkOverlapChars });
        if (chunks.length === 0) throw new IngestError('NO_TEXT', 'No readable text was found in this document.');
        await report(0.9, `Indexing ${chunks.length} passages`, true);
        const points = await retrieval.pointsFor(
          document.courseId,
          documentId,
          chunks.map((c) => ({ id: `${documentId}:${c.position}`, position: c.position, text: c.text })),
          (done, total) => void report(0.9 + 0.05 * (done / total), `Embedding passages: ${done} of ${total}`),
        );
        signal.throwIfAborted();
        // Qdrant is written first; if the task is then found cancelled, its points are removed again.
        if (retrieval.store.kind !== 'embedded') await retrieval.write(null, document.courseId, documentId, points);
        await report(0.96, `Saving ${chunks.length} passages`, true);
        signal.throwIfAborted();

        const pages = parsed.pages.length === 0 ? 1 : Math.max(...parsed.pages.map((p) => p.page));
        // The task row is the lock: a cancel that got in first wins, and two runs cannot interleave.
        const completed = await complete(async (tx) => {
          await tx.chunk.deleteMany({ where: { documentId } });
          await tx.chunk.createMany({
            data: chunks.map((c, i) => ({
              id: `${documentId}:${c.position}`,
              documentId,
              courseId: document.courseId,
              position: c.position,
              text: c.text,
              heading: c.heading,
              pageStart: c.pageStart,
              pageEnd: c.pageEnd,
              charStart: c.charStart,
              charEnd: c.charEnd,
              tokenCount: points[i]!.terms.length,
            })),
          });
          if (retrieval.store.kind === 'embedded') await retrieval.write(tx, document.courseId, documentId, points);
          // Cached search results for the course are now stale.
          await tx.course.update({ where: { id: document.courseId }, data: { searchVersion: { increment: 1 } } });
          await tx.document.update({
            where: { id: documentId },
            data: {
              status: 'READY',
              pages,
              chunkCount: chunks.length,
              errorCode: null,
              errorMessage: null,
              ocrPages: parsed.ocr.pages,
              ocrConfidence: parsed.ocr.confidence,
              ocrSkippedPages: parsed.ocr.skipped.map((s) => s.page),
            },
          });
          return tasks.completeIn(tx, taskId, completionMessage(chunks.length, pages, parsed.ocr));
        }, 120_000);
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
            chunks: chunks.length,
            parseMs,
            saveMs: Date.now() - saveStarted,
            peakRssMb: parsed.peakRssMb,
            ...(parsed.ocr.pages.length || parsed.ocr.skipped.length || parsed.ocr.blank.length
              ? {
                  ocrPages: parsed.ocr.pages.length,
                  ocrConfidence: parsed.ocr.confidence,
                  ocrSkipped: parsed.ocr.skipped,
                  ocrBlank: parsed.ocr.blank,
                }
              : {}),
          },
          'document ingested',
        );
        return 'completed';
      },
    );
  };
}
