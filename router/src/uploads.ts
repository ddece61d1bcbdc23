import busboy from 'busboy';
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Request, RequestHandler, Response } from 'express';
import type { Redis } from 'ioredis';
import { BlobTooLargeError, type BlobStore } from '@lib/blob/store.js';
import { ErrorCode, isDependencyUnavailable, UNAVAILABLE_RETRY_AFTER_S } from '@lib/errors.js';
import type { Identity } from '@lib/identity.js';
import type { Logger } from '@lib/logger.js';
import {
  completeUtf8Length,
  createDailyUploadQuota,
  dailyQuotaRefusal,
  detectFormat,
  MAX_FILENAME_LENGTH,
  saveUpload,
  SNIFF_BYTES,
  type DailyUploadQuota,
  type DailyUploadUsage,
  type UploadFormat,
  type UploadMeta,
} from '@lib/uploads.js';

export interface UploadHandlerDeps {
  blobStore: BlobStore;
  redis: Redis;
  /** Largest file accepted, in bytes. */
  maxBytes: number;
  /** How long an upload waits to be ingested. */
  ttlS: number;
  /** Bytes a user may upload per UTC day, pasted texts included (lib/uploads.ts); 0 or unset: no limit. */
  dailyBytesPerUser?: number | undefined;
  /** Used when the request has no logger of its own in `res.locals.log`. */
  log: Logger;
}

/** The codes this endpoint answers with beyond the common ones (all in lib/errors.ts). */
export const UploadErrorCode = { PAYLOAD_TOO_LARGE: ErrorCode.PAYLOAD_TOO_LARGE, UNSUPPORTED_TYPE: ErrorCode.UNSUPPORTED_TYPE } as const;
type Code = ErrorCode;

/** Room for boundaries, part headers and the small fields allowed beside the file. */
const FORM_OVERHEAD_BYTES = 64 * 1024;
const FIELD_LIMITS = { fields: 16, fieldSize: 1024, fieldNameSize: 100, parts: 32, headerPairs: 16 };
/**
 * After refusing a request whose body is still arriving, up to DISCARD_MAX_BYTES more
 * of it are read and thrown away (a small remainder: the connection can then be kept);
 * beyond that nothing more is read, so the client's sending stalls. The socket is cut
 * DISCARD_MAX_MS after the answer if the body has not ended. Cutting at once would reset
 * the connection with unread data, and many clients then fail on their pending write
 * before they read the answer.
 */
const DISCARD_MAX_BYTES = 1024 * 1024;
const DISCARD_MAX_MS = 5000;
/** A streamed file's bytes are counted against the daily quota ahead of their arrival, this much at a time. */
const QUOTA_STEP_BYTES = 4 * 1024 * 1024;
const SUPPORTED = 'Upload PDF, Markdown, plain text or HTML.';

/** An answer to the client other than success. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: Code,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** The client went away mid-upload: nobody to answer. */
class ClientGone extends Error {}

/** The file part failed (cut short or malformed): the client's doing, not ours. */
class SourceError extends Error {}

const tooLarge = (maxBytes: number) =>
  new Refusal(413, UploadErrorCode.PAYLOAD_TOO_LARGE, `The file is larger than the limit of ${maxBytes} bytes`, { maxBytes });
const badInput = (message: string) => new Refusal(400, ErrorCode.BAD_USER_INPUT, message);
const overDailyQuota = (usage: DailyUploadUsage, requestedBytes?: number) => {
  const { message, extensions } = dailyQuotaRefusal(usage, requestedBytes);
  return new Refusal(429, ErrorCode.RATE_LIMITED, message, extensions);
};
const quotaUnavailable = () =>
  new Refusal(503, ErrorCode.SERVICE_UNAVAILABLE, 'Uploads are temporarily unavailable; try again', {
    retryAfter: UNAVAILABLE_RETRY_AFTER_S,
  });

/**
 * Counts a file's bytes against its uploader's daily quota while they arrive, reserving ahead in
 * steps; what the upload does not keep (all of it, if it fails) is given back.
 */
class QuotaMeter {
  private counted = 0;
  /** Bytes reserved, per UTC day (an upload may cross midnight). */
  private reserved = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly quota: DailyUploadQuota,
    private readonly userId: string,
  ) {}

  async add(bytes: number) {
    this.counted += bytes;
    if (!this.quota.enabled || this.counted <= this.total) return;
    const need = this.counted - this.total;
    let reservation;
    try {
      reservation = await this.quota.reserve(this.userId, need, Math.max(need, QUOTA_STEP_BYTES));
    } catch {
      throw quotaUnavailable();
    }
    if (!reservation.ok) throw overDailyQuota(reservation.usage);
    this.reserved.set(reservation.day, (this.reserved.get(reservation.day) ?? 0) + reservation.granted);
    this.total += reservation.granted;
  }

  /** The upload is kept: give back what was reserved beyond its size. */
  async settle(log: Logger) {
    let surplus = this.total - this.counted;
    for (const [day, bytes] of [...this.reserved].reverse()) {
      if (surplus <= 0) break;
      const back = Math.min(bytes, surplus);
      await this.giveBack(day, back, log);
      surplus -= back;
    }
  }

  /** The upload failed: give everything back. */
  async refund(log: Logger) {
    for (const [day, bytes] of this.reserved) await this.giveBack(day, bytes, log);
    this.reserved.clear();
    this.total = 0;
  }

  private async giveBack(day: string, bytes: number, log: Logger) {
    try {
      await this.quota.release(this.userId, bytes, day);
    } catch (err) {
      log.warn({ err, bytes }, 'upload quota not given back');
    }
  }
}

interface Received {
  size: number;
  sha256: string;
  format: UploadFormat;
  mime: string;
  filename: string;
}

/**
 * POST /uploads: one file in the multipart field `file`, streamed into the blob
 * store, its format detected from its content, its metadata kept in Redis for
 * `ttlS` seconds for a later ingestDocument. Mount it behind authentication
 * (`res.locals.identity`, `res.locals.log`) and the rate limit.
 */
export function createUploadHandler(deps: UploadHandlerDeps): RequestHandler {
  return async (req, res) => {
    const log = (res.locals['log'] as Logger | undefined) ?? deps.log;
    const identity = res.locals['identity'] as Identity | undefined;
    const uploadId = randomUUID();
    const now = new Date();
    const quota = createDailyUploadQuota(deps.redis, deps.dailyBytesPerUser ?? 0);
    let meter: QuotaMeter | undefined;
    const blobKey = `uploads/${now.getUTCFullYear()}/${String(now.getUTCMonth() + 1).padStart(2, '0')}/${uploadId}`;

    try {
      if (!identity) throw new Refusal(401, ErrorCode.UNAUTHENTICATED, 'Authentication required');
      // Anyone may be allowed to upload in principle (ingestDocument checks course access),
      // but only teaching staff ingest material, so students are stopped here to save disk.
      if (identity.role === 'STUDENT') throw new Refusal(403, ErrorCode.FORBIDDEN, 'Only teachers can upload course material');
      if (!req.is('multipart/form-data')) throw badInput('Send the file as multipart/form-data in a field named "file"');
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > deps.maxBytes + FORM_OVERHEAD_BYTES) throw tooLarge(deps.maxBytes);
      // A body whose size is known and clearly over what is left of the day is refused before it is read.
      if (quota.enabled && Number.isFinite(declared)) {
        const usage = await quota.usage(identity.userId).catch(() => {
          throw quotaUnavailable();
        });
        const fileBytes = Math.max(1, declared - FORM_OVERHEAD_BYTES);
        if (usage.usedBytes + fileBytes > usage.limitBytes) throw overDailyQuota(usage, fileBytes);
      }
      meter = new QuotaMeter(quota, identity.userId);

      const file = await receive(req, { ...deps, log, blobKey, meter });
      const meta: UploadMeta = {
        id: uploadId,
        ownerId: identity.userId,
        blobKey,
        size: file.size,
        sha256: file.sha256,
        mime: file.mime,
        detectedFormat: file.format,
        filename: file.filename,
        createdAt: now.toISOString(),
      };
      try {
        await saveUpload(deps.redis, meta, deps.ttlS);
        await meter.settle(log);
      } catch (err) {
        await deleteBlob(deps.blobStore, blobKey, log);
        log.error({ err, uploadId }, 'upload metadata not saved');
        throw new Refusal(503, ErrorCode.SERVICE_UNAVAILABLE, 'Uploads are temporarily unavailable; try again', {
          retryAfter: UNAVAILABLE_RETRY_AFTER_S,
        });
      }
      log.info({ uploadId, size: file.size, format: file.format, sha256: file.sha256 }, 'upload stored');
      res.status(201).json({ uploadId, size: file.size, sha256: file.sha256, format: file.format, filename: file.filename });
    } catch (err) {
      await meter?.refund(log);
      if (err instanceof ClientGone) {
        log.info({ uploadId }, 'upload aborted by client');
        return;
      }
      if (err instanceof Refusal) {
        const level = err.status >= 500 ? 'warn' : 'info';
        log[level]({ uploadId, status: err.status, code: err.code }, 'upload refused');
        if (typeof err.extra['retryAfter'] === 'number' && !res.headersSent) res.setHeader('Retry-After', String(err.extra['retryAfter']));
        respond(req, res, err.status, err.code, err.message, err.extra);
        return;
      }
      if (isDependencyUnavailable(err)) {
        // Redis (quota, records) out of reach: retryable, and said so.
        log.warn({ err, uploadId }, 'upload refused: a dependency is unavailable');
        if (!res.headersSent) res.setHeader('Retry-After', String(UNAVAILABLE_RETRY_AFTER_S));
        respond(req, res, 503, ErrorCode.SERVICE_UNAVAILABLE, 'Uploads are temporarily unavailable; try again', {
          retryAfter: UNAVAILABLE_RETRY_AFTER_S,
        });
        return;
      }
      log.error({ err, uploadId }, 'upload failed');
      respond(req, res, 500, ErrorCode.INTERNAL_SERVER_ERROR, 'Internal server error');
    }
  };
}

/**
 * Parses the form and streams its one file into the blob store. On failure,
 * whatever was written is gone before this rejects.
 */
async function receive(req: Request, deps: UploadHandlerDeps & { blobKey: string; meter: QuotaMeter }): Promise<Received> {
  let form: busboy.Busboy;
  try {
    form = busboy({
      headers: req.headers,
      // Browsers send file names as raw UTF-8; busboy's default would read them as Latin-1.
      defParamCharset: 'utf8',
      limits: { ...FIELD_LIMITS, files: 2, fileSize: deps.maxBytes + 1 },
    });
  } catch (err) {
    throw badInput(`Malformed multipart/form-data request: ${(err as Error).message}`);
  }

  // Anything that ends the upload early aborts this; the file stream is then destroyed with the reason.
  const aborted = new AbortController();
  const fail = (reason: Error) => {
    if (!aborted.signal.aborted) aborted.abort(reason);
  };
  const failure = new Promise<never>((_, reject) => {
    aborted.signal.addEventListener('abort', () => reject(aborted.signal.reason as Error), { once: true });
  });
  failure.catch(() => {});

  let files = 0;
  const firstFile = new Promise<{ stream: Readable; filename: string | undefined }>((resolve) => {
    form.on('file', (name, stream, info) => {
      files++;
      if (name !== 'file') {
        stream.resume();
        fail(badInput(`Unexpected file field "${name.slice(0, 100)}": send the file in a field named "file"`));
      } else if (files > 1) {
        stream.resume();
        fail(badInput('Send exactly one file per upload'));
      } else {
        resolve({ stream, filename: info.filename });
      }
    });
  });
  const parsed = new Promise<void>((resolve) => form.once('finish', resolve));
  form.on('filesLimit', () => fail(badInput('Send exactly one file per upload')));
  form.on('partsLimit', () => fail(badInput('Too many parts in the form')));
  form.on('error', (err: Error) => fail(badInput(`Malformed multipart/form-data body: ${err.message}`)));

  let received = 0;
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (received > deps.maxBytes + FORM_OVERHEAD_BYTES) fail(tooLarge(deps.maxBytes));
  };
  const onGone = () => fail(new ClientGone());
  const onClose = () => {
    if (!req.complete) onGone();
  };
  req.on('data', onData);
  req.on('error', onGone);
  req.on('close', onClose);
  req.pipe(form);

  let stored = false;
  try {
    const file = await Promise.race([
      firstFile,
      parsed.then(() => {
        throw badInput('No file: send it in a multipart field named "file"');
      }),
      failure,
    ]);
    const result = await storeFile(file.stream, file.filename, deps, aborted.signal);
    stored = true;
    // The rest of the form must be well formed too (and hold no second file).
    await Promise.race([parsed, failure]);
    return result;
  } catch (err) {
    if (stored) await deleteBlob(deps.blobStore, deps.blobKey, deps.log);
    throw aborted.signal.aborted ? aborted.signal.reason : err;
  } finally {
    req.off('data', onData);
    req.off('error', onGone);
    req.off('close', onClose);
    req.unpipe(form);
    if (!form.destroyed) form.destroy();
  }
}

/** Sniffs the first bytes, refuses unsupported content, then streams the whole file into the store. */
async function storeFile(
  stream: Readable,
  rawFilename: string | undefined,
  deps: UploadHandlerDeps & { blobKey: string; meter: QuotaMeter },
  signal: AbortSignal,
): Promise<Received> {
  const onAbort = () => stream.destroy(signal.reason as Error);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const next = async () => {
    try {
      return await chunks.next();
    } catch (err) {
      throw signal.aborted ? signal.reason : new SourceError((err as Error).message);
    }
  };
  try {
    const filename = sanitizeFilename(rawFilename);
    // Peek: gather the first few KB (fewer for a short file) before deciding anything.
    const head: Buffer[] = [];
    let headBytes = 0;
    let ended = false;
    while (headBytes < SNIFF_BYTES) {
      const step = await next();
      if (step.done) {
        ended = true;
        break;
      }
      head.push(step.value);
      headBytes += step.value.length;
    }
    if (headBytes === 0) throw badInput('The file is empty');
    const detected = detectFormat(Buffer.concat(head), filename);
    if ('unsupported' in detected) {
      throw new Refusal(415, UploadErrorCode.UNSUPPORTED_TYPE, `This looks like ${detected.unsupported}. ${SUPPORTED}`, {
        detected: detected.unsupported,
      });
    }

    async function* body(): AsyncGenerator<Buffer> {
      yield* head;
      if (ended) return;
      for (let step = await next(); !step.done; step = await next()) yield step.value;
    }
    const info = await deps.blobStore.put(deps.blobKey, metered(detected.format === 'PDF' ? body() : utf8Only(body()), deps.meter), {
      maxBytes: deps.maxBytes,
    });
    return { size: info.size, sha256: info.sha256, format: detected.format, mime: detected.mime, filename };
  } catch (err) {
    if (err instanceof BlobTooLargeError) throw tooLarge(deps.maxBytes);
    if (err instanceof SourceError) throw badInput(`The upload was cut short or malformed: ${err.message}`);
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Passes the file through, counting it against the daily quota (failing with 429 past it). */
async function* metered(chunks: AsyncIterable<Buffer>, meter: QuotaMeter): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    await meter.add(chunk.length);
    yield chunk;
  }
}

/** Passes text through, failing with 415 at the first NUL byte or invalid UTF-8 anywhere in the file. */
async function* utf8Only(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const notText = () =>
    new Refusal(415, UploadErrorCode.UNSUPPORTED_TYPE, `This looks like a binary file. ${SUPPORTED}`, { detected: 'a binary file' });
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of chunks) {
    const bytes = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    const complete = completeUtf8Length(bytes);
    if (bytes.includes(0) || !isUtf8(bytes.subarray(0, complete))) throw notText();
    carry = Buffer.from(bytes.subarray(complete));
    yield chunk;
  }
  if (carry.length) throw notText();
}

/** A name for display only: no path, no control or bidirectional-override characters, at most 200 UTF-16 units. */
export function sanitizeFilename(raw: string | undefined): string {
  let name = (raw ?? '')
    .normalize('NFC')
    .replace(/^.*[\\/]/, '')
    .replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^\.+/, '');
  if (name.length > MAX_FILENAME_LENGTH) {
    name = name.slice(0, MAX_FILENAME_LENGTH);
    if (/[\ud800-\udbff]$/.test(name)) name = name.slice(0, -1);
  }
  return name || 'upload';
}

async function deleteBlob(store: BlobStore, key: string, log: Logger): Promise<void> {
  try {
    await store.delete(key);
  } catch (err) {
    log.error({ err, blobKey: key }, 'upload blob not deleted');
  }
}

/**
 * Sends an error shaped as a GraphQL response. If the request body is still
 * arriving, reads and discards a bounded amount of it, then stops reading and
 * cuts the connection a few seconds later (see DISCARD_MAX_BYTES).
 */
function respond(req: Request, res: Response, status: number, code: Code, message: string, extra: Record<string, unknown> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.status(status).json({ errors: [{ message, extensions: { code, ...extra } }] });
  if (req.complete || req.destroyed) return;
  req.unpipe();
  let discarded = 0;
  const onData = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_MAX_BYTES) req.pause();
  };
  const cleanup = () => {
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', cleanup);
    req.off('close', cleanup);
  };
  const timer = setTimeout(() => {
    cleanup();
    if (res.writableFinished) req.socket.destroy();
    else res.once('finish', () => req.socket.destroy());
  }, DISCARD_MAX_MS);
  timer.unref();
  req.on('data', onData);
  req.once('end', cleanup);
  req.once('close', cleanup);
  req.resume();
}
