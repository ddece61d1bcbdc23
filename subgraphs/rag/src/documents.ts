import DataLoader from 'dataloader';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Redis } from 'ioredis';
import { assertUuid, requireCourseMember, requireCourseTeacher, type AccessContext } from '@lib/access.js';
import type { BlobStore } from '@lib/blob/store.js';
import { Prisma, sqlOf, type Document, type PrismaClient } from '@lib/db/client.js';
import { appError, badInput, ErrorCode, notFound } from '@lib/errors.js';
import type { JobQueues } from '@lib/jobs/queues.js';
import type { Logger } from '@lib/logger.js';
import type { Retrieval } from '@lib/search/retrieval.js';
import { courseIfAllowed } from './courses.js';
import { startTask, taskByIdempotencyKey, type TaskStore } from '@lib/tasks/store.js';
import { taskView } from '@lib/tasks/view.js';
import {
  consumeUpload,
  createDailyUploadQuota,
  dailyQuotaRefusal,
  formatBytes,
  getUpload,
  saveUpload,
  type UploadMeta,
} from '@lib/uploads.js';

export const MAX_TEXT_CHARS = 1_000_000;

export interface DocumentQuotas {
  /** Bytes a user may send per UTC day, counted with the router's uploads (lib/uploads.ts); 0: no limit. */
  dailyUploadBytesPerUser: number;
  /** Bytes of files (uploads and pasted texts) a course may hold; 0: no limit. */
  courseStorageBytes: number;
}

export interface DocumentDeps {
  prisma: PrismaClient;
  redis: Redis;
  blobs: BlobStore;
  queues: JobQueues;
  tasks: TaskStore;
  retrieval: Retrieval;
  /** Unset: no limits. */
  quotas?: DocumentQuotas | undefined;
}

export interface DocumentContext extends AccessContext {
  prisma: PrismaClient;
  log: Logger;
  docs: DocumentDeps;
  documents: DataLoader<string, Document | null>;
  documentsByCourse: DataLoader<string, Document[]>;
  documentsByTask: DataLoader<string, Document | null>;
}

export function createDocumentLoaders(prisma: PrismaClient) {
  // Straight on the pool (sqlOf): every search resolves its passages' documents through here.
  const byKey = <K extends 'id' | 'taskId'>(key: K) =>
    new DataLoader<string, Document | null>(async (ids) => {
      const rows = await sqlOf(prisma)<Document>(
        key === 'id'
          ? Prisma.sql`SELECT * FROM "Document" WHERE id = ANY(${[...ids]}::uuid[])`
          : Prisma.sql`SELECT * FROM "Document" WHERE "taskId" = ANY(${[...ids]}::uuid[])`,
      );
      const map = new Map<string, Document>(rows.map((d) => [d[key] as string, d]));
      return ids.map((id) => map.get(id) ?? null);
    });
  return {
    documents: byKey('id'),
    documentsByTask: byKey('taskId'),
    documentsByCourse: new DataLoader<string, Document[]>(async (courseIds) => {
      const rows = await prisma.document.findMany({ where: { courseId: { in: [...courseIds] } }, orderBy: { createdAt: 'desc' } });
      const map = new Map<string, Document[]>();
      for (const d of rows) map.set(d.courseId, [...(map.get(d.courseId) ?? []), d]);
      return courseIds.map((id) => map.get(id) ?? []);
    }),
  };
}

export interface IngestInput {
  courseId: string;
  title: string;
  uploadId?: string | null;
  text?: string | null;
  format?: 'MARKDOWN' | 'TEXT' | 'HTML' | 'PDF' | null;
  idempotencyKey?: string | null;
}

/** What the course's documents take in the blob store (failed ones keep their file too): Course.storageBytes, kept by a trigger. */
async function courseStorageUsed(prisma: PrismaClient, courseId: string): Promise<number> {
  const [row] = await sqlOf(prisma)<{ bytes: number }>(
    Prisma.sql`SELECT "storageBytes"::float8 AS bytes FROM "Course" WHERE id = ${courseId}::uuid`,
  );
  if (!row) throw notFound('Course'); // deleted meanwhile
  return row.bytes;
}

/** QUOTA_EXCEEDED when `bytes` more do not fit in the course's storage. */
function checkCourseStorage(limitBytes: number, usedBytes: number, bytes: number) {
  if (limitBytes <= 0 || usedBytes + bytes <= limitBytes) return;
  throw storageFull(limitBytes, usedBytes, bytes);
}

function storageFull(limitBytes: number, usedBytes: number, bytes: number) {
  return appError(
    ErrorCode.QUOTA_EXCEEDED,
    `The course's storage is full: its documents take ${formatBytes(usedBytes)} of ${formatBytes(limitBytes)}, ` +
      `and this one needs ${formatBytes(bytes)} more; delete documents the course no longer needs`,
    { limitBytes, usedBytes, requestedBytes: bytes },
  );
}

/**
 * Records the document and its task in one transaction, then enqueues the job
 * (startTask: job id = task id, the reconciler enqueues it if Redis failed in
 * between). The same idempotencyKey returns the first task.
 */
export async function ingestDocument(ctx: DocumentContext, input: IngestInput) {
  const courseId = assertUuid(input.courseId, 'courseId');
  const title = input.title.trim();
  if (title.length < 1 || title.length > 200) throw badInput('Title must be 1 to 200 characters', 'title');
  const hasUpload = input.uploadId != null;
  const hasText = input.text != null;
  if (hasUpload === hasText) throw badInput('Give either uploadId or text', hasUpload ? 'text' : 'uploadId');
  const key = input.idempotencyKey?.trim() || null;
  if (key !== null && key.length > 200) throw badInput('idempotencyKey must be at most 200 characters', 'idempotencyKey');
  await courseIfAllowed(ctx, courseId, Prisma.sql`id`, requireCourseTeacher);
  const owner = ctx.identity.userId;

  const checkExisting = (task: { courseId: string }) => {
    if (task.courseId !== courseId) throw appError(ErrorCode.CONFLICT, 'This idempotencyKey was already used for another course');
  };
  const seen = await taskByIdempotencyKey(ctx.prisma, owner, key, checkExisting);
  if (seen) return taskView(seen);
  const quotas = ctx.docs.quotas ?? { dailyUploadBytesPerUser: 0, courseStorageBytes: 0 };

  let consumedUpload: UploadMeta | null = null;
  /** A pasted text's bytes counted against the day, given back if it is not stored after all. */
  let countedText: { bytes: number; day: string } | null = null;
  const dailyQuota = createDailyUploadQuota(ctx.docs.redis, quotas.dailyUploadBytesPerUser);
  let source: { blobKey: string; format: Document['format']; sizeBytes: number; sha256: string; filename: string | null };
  if (hasUpload) {
    const uploadId = input.uploadId!;
    const meta = await getUpload(ctx.docs.redis, uploadId);
    if (!meta || meta.ownerId !== owner)
      throw badInput(
        'Upload not found: it may have expired (uploads wait a limited time to be ingested) or belong to someone else',
        'uploadId',
      );
    // Refused before the upload is consumed: it can still go to another course.
    if (quotas.courseStorageBytes > 0)
      checkCourseStorage(quotas.courseStorageBytes, await courseStorageUsed(ctx.prisma, courseId), meta.size);
    const consumed = await consumeUpload(ctx.docs.redis, uploadId, owner);
    if (!consumed) throw badInput('This upload was already used for another document', 'uploadId');
    consumedUpload = consumed;
    source = {
      blobKey: consumed.blobKey,
      format: consumed.detectedFormat,
      sizeBytes: consumed.size,
      sha256: consumed.sha256,
      filename: consumed.filename || null,
    };
  } else {
    const text = input.text!;
    if (text.trim().length === 0) throw badInput('The text is empty', 'text');
    if (text.length > MAX_TEXT_CHARS)
      throw badInput(`The text is longer than ${MAX_TEXT_CHARS.toLocaleString('en')} characters; upload it as a file instead`, 'text');
    const format = input.format ?? 'MARKDOWN';
    if (format === 'PDF') throw badInput('Pasted text cannot be a PDF; upload the file instead', 'format');
    const bytes = Buffer.from(text, 'utf8');
    // The course's storage is checked by the statement that records the document (startTask's guard).
    // Pasted text counts against the day's upload quota, as a file sent to POST /uploads does.
    const reservation = await dailyQuota.reserve(owner, bytes.length);
    if (!reservation.ok) {
      const { message, extensions } = dailyQuotaRefusal(reservation.usage, bytes.length);
      throw appError(ErrorCode.RATE_LIMITED, message, extensions);
    }
    if (dailyQuota.enabled) countedText = { bytes: bytes.length, day: reservation.day };
    try {
      const blob = await ctx.docs.blobs.put(`texts/${randomUUID()}`, Readable.from([bytes]), { maxBytes: 4 * MAX_TEXT_CHARS + 16 });
      source = { blobKey: blob.key, format, sizeBytes: blob.size, sha256: blob.sha256, filename: null };
    } catch (err) {
      await dailyQuota.release(owner, bytes.length, reservation.day).catch(() => {});
      throw err;
    }
  }

  const taskId = randomUUID();
  const documentId = randomUUID();
  const { task, created } = await startTask(
    { prisma: ctx.prisma, queues: ctx.docs.queues, tasks: ctx.docs.tasks, log: ctx.log },
    {
      kind: 'INGEST_DOCUMENT',
      ownerId: owner,
      courseId,
      payload: { taskId, documentId, courseId },
      idempotencyKey: key,
      checkExisting,
      // The room is checked by the statement that writes the document, the course row locked for it
      // (FOR NO KEY UPDATE: as the trigger's update of storageBytes locks it, so two ingestions cannot
      // both take the last room, while inserts elsewhere that only check the course's key are not held up).
      ...(quotas.courseStorageBytes > 0
        ? {
            guard: {
              sql: Prisma.sql`
                SELECT 1 FROM "Course"
                WHERE id = ${courseId}::uuid AND "storageBytes" + ${source.sizeBytes} <= ${quotas.courseStorageBytes}
                FOR NO KEY UPDATE`,
              // (Read again for the message: another document may have gone meanwhile, the figures say so.)
              refused: async () => {
                throw storageFull(quotas.courseStorageBytes, await courseStorageUsed(ctx.prisma, courseId), source.sizeBytes);
              },
            },
          }
        : {}),
      subject: Prisma.sql`
        INSERT INTO "Document" (id, "courseId", title, "uploadedBy", "taskId", "blobKey", format, "sizeBytes", sha256, filename, "updatedAt")
        SELECT ${documentId}::uuid, ${courseId}::uuid, ${title}, ${owner}, task.id, ${source.blobKey},
               ${source.format}::"DocumentFormat", ${source.sizeBytes}, ${source.sha256}, ${source.filename}, now()
        FROM task`,
      // Give the upload back, so the teacher can try again with the same id; drop a pasted text's file and its bytes.
      onRollback: async () => {
        if (consumedUpload) await saveUpload(ctx.docs.redis, consumedUpload).catch(() => {});
        else await ctx.docs.blobs.delete(source.blobKey).catch(() => {});
        if (countedText) await dailyQuota.release(owner, countedText.bytes, countedText.day).catch(() => {});
      },
    },
  );
  if (!created) return taskView(task);
  ctx.log.info({ taskId, documentId, courseId, format: source.format, sizeBytes: source.sizeBytes }, 'ingestion accepted');
  return taskView(task);
}

export async function getDocument(ctx: DocumentContext, rawId: string) {
  const doc = await ctx.documents.load(assertUuid(rawId));
  if (!doc) throw notFound('Document');
  const role = await requireCourseMember(ctx, doc.courseId);
  if (doc.status !== 'READY' && role === 'STUDENT') throw notFound('Document');
  return doc;
}

export async function courseDocuments(ctx: DocumentContext, courseId: string) {
  const role = await requireCourseMember(ctx, courseId);
  const docs = await ctx.documentsByCourse.load(courseId);
  return role === 'STUDENT' ? docs.filter((d) => d.status === 'READY') : docs;
}

export async function taskDocument(ctx: DocumentContext, taskId: string) {
  const doc = await ctx.documentsByTask.load(taskId);
  if (!doc) return null;
  await requireCourseMember(ctx, doc.courseId);
  return doc;
}

/** Removes the document and its passages (cascade), stops its task, then deletes its file. */
export async function deleteDocument(ctx: DocumentContext, rawId: string) {
  const doc = await ctx.documents.load(assertUuid(rawId));
  if (!doc) throw notFound('Document');
  await requireCourseTeacher(ctx, doc.courseId);
  if (doc.taskId) {
    const cancelled = await ctx.docs.tasks.cancel(doc.taskId);
    if (cancelled) await ctx.docs.queues.removeIfWaiting('INGEST_DOCUMENT', doc.taskId);
  }
  // Chunks and the embedded index go with the row (cascade); Qdrant's points are removed explicitly.
  const [{ count }] = await ctx.prisma.$transaction([
    ctx.prisma.document.deleteMany({ where: { id: doc.id } }),
    ctx.prisma.course.update({ where: { id: doc.courseId }, data: { searchVersion: { increment: 1 } } }),
  ]);
  // Points left behind by a failure here are harmless (search only returns chunks that exist) and must not keep the file.
  if (ctx.docs.retrieval.store.kind !== 'embedded') {
    await ctx.docs.retrieval.store
      .deleteDocument(doc.courseId, doc.id)
      .catch((err: unknown) => ctx.log.warn({ err, documentId: doc.id }, 'vector points not deleted'));
  }
  await ctx.docs.blobs.delete(doc.blobKey).catch((err: unknown) => ctx.log.warn({ err, blobKey: doc.blobKey }, 'blob not deleted'));
  ctx.log.info({ documentId: doc.id, courseId: doc.courseId }, 'document deleted');
  return count > 0;
}
