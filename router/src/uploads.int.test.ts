import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import express from 'express';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createLocalBlobStore } from '@lib/blob/local.js';
import type { BlobStore } from '@lib/blob/store.js';
import { isRole } from '@lib/identity.js';
import { consumeUpload, createDailyUploadQuota, getUpload, type UploadMeta } from '@lib/uploads.js';
import { testInfra } from '../../tests/support/infra.js';
import { createUploadHandler, sanitizeFilename } from './uploads.js';

const MAX_BYTES = 256 * 1024;
const TTL_S = 600;

const PDF = Buffer.from(
  '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n',
  'latin1',
);
const PNG = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n\0\0\0\rIHDR', 'latin1'), randomBytes(2000)]);
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
/** A PDF of exactly `size` bytes (a valid header, then filler a PDF reader would skip). */
const pdfOfSize = (size: number) => Buffer.concat([PDF, Buffer.alloc(size - PDF.length, 0x20)]);

interface LogEntry {
  msg: string;
  [key: string]: unknown;
}

describe('POST /uploads', () => {
  let redis: Redis;
  let root: string;
  let server: Server;
  let base: string;
  const logs: LogEntry[] = [];

  beforeAll(async () => {
    redis = new Redis(testInfra().REDIS_URL, { maxRetriesPerRequest: 1 });
    root = await mkdtemp(join(tmpdir(), 'uploads-int-'));
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as LogEntry);
        cb();
      },
    });
    const log = pino({ level: 'debug' }, sink);
    const handler = createUploadHandler({ blobStore: createLocalBlobStore(root), redis, maxBytes: MAX_BYTES, ttlS: TTL_S, log });

    const app = express();
    // Stands in for the router's authentication: identity from test headers.
    app.post(
      '/uploads',
      (req, res, next) => {
        const role = req.headers['x-test-role'];
        const requestId = randomUUID();
        res.locals['requestId'] = requestId;
        res.locals['log'] = log.child({ reqId: requestId });
        if (isRole(role)) res.locals['identity'] = { userId: String(req.headers['x-test-user'] ?? 'teacher-1'), role };
        next();
      },
      handler,
    );
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await redis.quit();
    await rm(root, { recursive: true, force: true });
  });

  beforeEach(() => {
    logs.length = 0;
  });

  /** Every file under the store's root, temporary ones included. */
  const filesOnDisk = async () => {
    const entries = await readdir(root, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(root.length + 1));
  };

  const waitForLog = async (msg: string, timeoutMs = 5000): Promise<LogEntry> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const entry = logs.find((l) => l.msg === msg);
      if (entry) return entry;
      if (Date.now() > deadline) throw new Error(`no "${msg}" log; got ${JSON.stringify(logs.map((l) => l.msg))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  const upload = async (
    files: { field?: string; data: Uint8Array; name?: string; type?: string }[],
    opts: { role?: string; user?: string; fields?: Record<string, string> } = {},
  ) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(opts.fields ?? {})) form.append(k, v);
    for (const f of files)
      form.append(f.field ?? 'file', new Blob([f.data], { type: f.type ?? 'application/octet-stream' }), f.name ?? 'x.bin');
    const res = await fetch(`${base}/uploads`, {
      method: 'POST',
      body: form,
      headers: { 'x-test-role': opts.role ?? 'TEACHER', 'x-test-user': opts.user ?? 'teacher-1' },
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  it('stores a PDF named notes.txt as a PDF: 201, metadata in Redis with a TTL, the blob on disk', async () => {
    const { status, body } = await upload([{ data: PDF, name: 'notes.txt', type: 'text/plain' }]);
    expectStatus({ status, body }, 201);
    expect(Object.keys(body).sort()).toEqual(['filename', 'format', 'sha256', 'size', 'uploadId']);
    expect(body['format']).toBe('PDF');
    expect(body['size']).toBe(PDF.length);
    expect(body['sha256']).toBe(sha256(PDF));
    expect(body['filename']).toBe('notes.txt');

    const meta = (await getUpload(redis, body['uploadId'])) as UploadMeta;
    const now = new Date();
    const month = String(now.getUTCMonth() + 1).padStart(2, '0');
    expect(meta).toEqual({
      id: body['uploadId'],
      ownerId: 'teacher-1',
      blobKey: `uploads/${now.getUTCFullYear()}/${month}/${body['uploadId']}`,
      size: PDF.length,
      sha256: sha256(PDF),
      mime: 'application/pdf',
      detectedFormat: 'PDF',
      filename: 'notes.txt',
      createdAt: meta.createdAt,
    });
    expect(Math.abs(Date.parse(meta.createdAt) - Date.now())).toBeLessThan(10_000);
    const ttl = await redis.ttl(`upload:${meta.id}`);
    expect(ttl).toBeGreaterThan(TTL_S - 10);
    expect(ttl).toBeLessThanOrEqual(TTL_S);

    const onDisk = await readFile(join(root, meta.blobKey));
    expect(sha256(onDisk)).toBe(body['sha256']);
    expect((await stat(join(root, meta.blobKey))).mode & 0o777).toBe(0o640);

    const stored = await waitForLog('upload stored');
    expect(stored['uploadId']).toBe(meta.id);
    expect(stored['size']).toBe(PDF.length);
    expect(stored['format']).toBe('PDF');
    expect(typeof stored['reqId']).toBe('string');
  });

  it('detects Markdown, ignores other fields, and sanitises the filename', async () => {
    const md = Buffer.from('# Cells\n\nEvery living thing is made of **cells**.\n\n- nucleus\n- membrane\n');
    const name = `../../etc/\u202Eevil\u200B ${'n'.repeat(300)}.md`;
    const { status, body } = await upload([{ data: md, name }], { fields: { title: 'ignored', note: 'also ignored' } });
    expectStatus({ status, body }, 201);
    expect(body['format']).toBe('MARKDOWN');
    expect(body['filename']).toBe(sanitizeFilename(name));
    expect(body['filename']).toHaveLength(200);
    expect(body['filename']).toMatch(/^evil n/);
    expect((await getUpload(redis, body['uploadId']))?.mime).toBe('text/markdown');
  });

  it('keeps a UTF-8 filename intact', async () => {
    const { status, body } = await upload([{ data: Buffer.from('Bonjour à tous.\n'), name: 'leçon één.txt' }]);
    expectStatus({ status, body }, 201);
    expect(body['filename']).toBe('leçon één.txt');
    expect(body['format']).toBe('TEXT');
  });

  it('accepts a file of exactly the limit', async () => {
    const data = pdfOfSize(MAX_BYTES);
    const { status, body } = await upload([{ data, name: 'exact.pdf' }]);
    expectStatus({ status, body }, 201);
    expect(body['size']).toBe(MAX_BYTES);
  });

  it('refuses a file over the limit with 413 from its Content-Length, storing nothing', async () => {
    const before = await filesOnDisk();
    const { status, body } = await upload([{ data: pdfOfSize(2 * MAX_BYTES), name: 'big.pdf' }]);
    expect(status).toBe(413);
    expect(body['errors'][0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    expect(body['errors'][0].extensions.maxBytes).toBe(MAX_BYTES);
    expect(await filesOnDisk()).toEqual(before);
    const refused = await waitForLog('upload refused');
    expect(await redis.exists(`upload:${refused['uploadId']}`)).toBe(0);
  });

  it('refuses a file one byte over the limit that fits in the form overhead, deleting the partial blob', async () => {
    const before = await filesOnDisk();
    const { status, body } = await upload([{ data: pdfOfSize(MAX_BYTES + 1), name: 'big.pdf' }]);
    expect(status).toBe(413);
    expect(body['errors'][0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await filesOnDisk()).toEqual(before);
  });

  it('answers 413 while a chunked upload without Content-Length is still arriving, and stops reading it', async () => {
    const before = await filesOnDisk();
    const boundary = `b-${randomUUID()}`;
    const req = request(`${base}/uploads`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'x-test-role': 'TEACHER' },
    });
    let response: IncomingMessage | undefined;
    let failed = false;
    const settled = new Promise<void>((resolve) => {
      req.once('response', (res) => {
        response = res;
        resolve();
      });
      req.once('error', () => {
        failed = true;
        resolve();
      });
    });
    let written = 0;
    try {
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.pdf"\r\n\r\n`);
      req.write(PDF);
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const sendLimit = 256 * 1024 * 1024;
      while (!response && !failed && written < sendLimit) {
        written += chunk.length;
        if (!req.write(chunk)) await Promise.race([new Promise((r) => req.once('drain', r)), settled]);
      }
      await settled;
      // A response came before the connection failed.
      expect(response).toBeInstanceOf(IncomingMessage);
      const res = response!;
      expect(res.statusCode).toBe(413);
      const body = JSON.parse(await text(res)) as { errors: { extensions: { code: string } }[] };
      expect(body.errors[0]!.extensions.code).toBe('PAYLOAD_TOO_LARGE');
      // The server stopped reading long before the client gave up.
      expect(written).toBeLessThan(64 * 1024 * 1024);
    } finally {
      req.destroy();
    }
    expect(await filesOnDisk()).toEqual(before);
  });

  it('refuses a PNG named .pdf with 415, naming what it is, storing nothing', async () => {
    const before = await filesOnDisk();
    const { status, body } = await upload([{ data: PNG, name: 'slides.pdf', type: 'application/pdf' }]);
    expect(status).toBe(415);
    expect(body['errors'][0]).toEqual({
      message: 'This looks like a PNG image. Upload PDF, Markdown, plain text or HTML.',
      extensions: { code: 'UNSUPPORTED_TYPE', detected: 'a PNG image' },
    });
    expect(await filesOnDisk()).toEqual(before);
  });

  it('refuses a ZIP with a message naming it', async () => {
    const zip = Buffer.concat([Buffer.from([0x50, 0x4b, 3, 4]), Buffer.alloc(26), Buffer.from('data.csv'), randomBytes(500)]);
    const { status, body } = await upload([{ data: zip, name: 'lesson.md' }]);
    expect(status).toBe(415);
    expect(body['errors'][0].message).toBe(
      'This looks like a ZIP archive (for example a .docx). Upload PDF, Markdown, plain text or HTML.',
    );
  });

  it('refuses text that turns binary after the first bytes, deleting what was written', async () => {
    const before = await filesOnDisk();
    const data = Buffer.concat([Buffer.from('plain words\n'.repeat(5000)), Buffer.from([0, 1, 2, 3]), Buffer.from('more\n')]);
    const { status, body } = await upload([{ data, name: 'notes.txt' }]);
    expect(status).toBe(415);
    expect(body['errors'][0].extensions.detected).toBe('a binary file');
    expect(await filesOnDisk()).toEqual(before);
  });

  it('refuses students with 403 FORBIDDEN and requests without identity with 401', async () => {
    const before = await filesOnDisk();
    const student = await upload([{ data: PDF, name: 'a.pdf' }], { role: 'STUDENT' });
    expect(student.status).toBe(403);
    expect(student.body['errors'][0]).toEqual({
      message: 'Only teachers can upload course material',
      extensions: { code: 'FORBIDDEN' },
    });
    const anonymous = await upload([{ data: PDF, name: 'a.pdf' }], { role: 'nobody' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body['errors'][0].extensions.code).toBe('UNAUTHENTICATED');
    const admin = await upload([{ data: PDF, name: 'a.pdf' }], { role: 'ADMIN' });
    expectStatus(admin, 201);
    expect(await filesOnDisk()).toHaveLength(before.length + 1);
  });

  it('answers 400 BAD_USER_INPUT to malformed requests, storing nothing', async () => {
    const before = await filesOnDisk();
    const cases: { name: string; res: Promise<{ status: number; body: Record<string, any> }> }[] = [
      {
        name: 'not multipart',
        res: fetch(`${base}/uploads`, {
          method: 'POST',
          body: JSON.stringify({ file: 'x' }),
          headers: { 'content-type': 'application/json', 'x-test-role': 'TEACHER' },
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any> })),
      },
      {
        name: 'multipart without boundary',
        res: fetch(`${base}/uploads`, {
          method: 'POST',
          body: 'x',
          headers: { 'content-type': 'multipart/form-data', 'x-test-role': 'TEACHER' },
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any> })),
      },
      { name: 'no file field', res: upload([], { fields: { title: 'x' } }) },
      { name: 'file in another field', res: upload([{ field: 'document', data: PDF, name: 'a.pdf' }]) },
      {
        name: 'two files',
        res: upload([
          { data: PDF, name: 'a.pdf' },
          { data: PDF, name: 'b.pdf' },
        ]),
      },
      { name: 'empty file', res: upload([{ data: new Uint8Array(), name: 'empty.pdf' }]) },
    ];
    for (const { name, res } of cases) {
      const { status, body } = await res;
      // The case's name goes along with each check, so a failure says which case it was.
      expect({ name, status, body }).toEqual({ name, status: 400, body: expect.anything() });
      expect({ name, code: body['errors'][0].extensions.code }).toEqual({ name, code: 'BAD_USER_INPUT' });
      expect({ name, messageType: typeof body['errors'][0].message }).toEqual({ name, messageType: 'string' });
    }
    expect(await filesOnDisk()).toEqual(before);
  });

  it('lets an upload be consumed once, and only by its owner', async () => {
    const { status, body } = await upload([{ data: PDF, name: 'mine.pdf' }], { user: 'teacher-a' });
    expectStatus({ status, body }, 201);
    const id = body['uploadId'] as string;

    expect(await consumeUpload(redis, id, 'teacher-b')).toBeNull();
    // A refused consume leaves the upload in place.
    expect((await getUpload(redis, id))?.ownerId).toBe('teacher-a');

    const results = await Promise.all([consumeUpload(redis, id, 'teacher-a'), consumeUpload(redis, id, 'teacher-a')]);
    // Exactly one concurrent consume wins.
    expect(results.filter((r) => r !== null)).toHaveLength(1);
    const meta = results.find((r) => r !== null)!;
    expect(meta.id).toBe(id);
    expect(meta.sha256).toBe(sha256(PDF));
    expect(await consumeUpload(redis, id, 'teacher-a')).toBeNull();
    expect(await getUpload(redis, id)).toBeNull();
    expect(await consumeUpload(redis, 'not-a-uuid', 'teacher-a')).toBeNull();
    expect(await getUpload(redis, randomUUID())).toBeNull();
  });

  it('leaves nothing behind when the client aborts mid-upload, and keeps serving', async () => {
    const before = await filesOnDisk();
    const boundary = `b-${randomUUID()}`;
    const req = request(`${base}/uploads`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'x-test-role': 'TEACHER' },
    });
    req.on('error', () => {});
    try {
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="partial.pdf"\r\n\r\n`);
      req.write(pdfOfSize(100 * 1024));
      // Wait until the blob is being written (a temporary file exists), then hang up.
      const deadline = Date.now() + 5000;
      while (!(await filesOnDisk()).some((f) => f.includes('.tmp-'))) {
        // Otherwise the upload never started writing.
        expect(Date.now()).toBeLessThan(deadline);
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      req.destroy();
    }

    const aborted = await waitForLog('upload aborted by client');
    expect(await filesOnDisk()).toEqual(before);
    expect(await redis.exists(`upload:${aborted['uploadId']}`)).toBe(0);

    const next = await upload([{ data: PDF, name: 'after.pdf' }]);
    expectStatus(next, 201);
  });
});

describe('POST /uploads: the daily quota per user', () => {
  const QUOTA = 300 * 1024;
  let redis: Redis;
  let root: string;
  let server: Server;
  let base: string;
  const puts: string[] = [];
  const quota = () => createDailyUploadQuota(redis, QUOTA);

  beforeAll(async () => {
    redis = new Redis(testInfra().REDIS_URL, { maxRetriesPerRequest: 1 });
    root = await mkdtemp(join(tmpdir(), 'uploads-quota-int-'));
    const store = createLocalBlobStore(root);
    // Records which uploads reached the store at all.
    const blobStore: BlobStore = { ...store, put: (key, body, opts) => (puts.push(key), store.put(key, body, opts)) };
    const log = pino({ level: 'silent' });
    const handler = createUploadHandler({ blobStore, redis, maxBytes: MAX_BYTES, ttlS: TTL_S, dailyBytesPerUser: QUOTA, log });
    const app = express();
    app.post(
      '/uploads',
      (req, res, next) => {
        res.locals['identity'] = { userId: String(req.headers['x-test-user']), role: 'TEACHER' };
        next();
      },
      handler,
    );
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await redis.quit();
    await rm(root, { recursive: true, force: true });
  });

  const filesOnDisk = async () => (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;

  const upload = async (user: string, data: Uint8Array, name = 'notes.pdf') => {
    const form = new FormData();
    form.append('file', new Blob([data]), name);
    const res = await fetch(`${base}/uploads`, { method: 'POST', body: form, headers: { 'x-test-user': user } });
    const body = (await res.json()) as Record<string, any>;
    return { status: res.status, body, retryAfter: res.headers.get('retry-after') ?? undefined };
  };

  it('counts each user’s bytes per UTC day and refuses, from its Content-Length, the upload that would pass the limit', async () => {
    const user = `quota-${randomUUID()}`;
    expectStatus(await upload(user, pdfOfSize(200 * 1024)), 201);
    // Exactly the file's size is counted (what was reserved ahead is given back).
    expect((await quota().usage(user)).usedBytes).toBe(200 * 1024);

    const files = await filesOnDisk();
    const putsBefore = puts.length;
    const refused = await upload(user, pdfOfSize(200 * 1024));
    expect(refused.status).toBe(429);
    const error = refused.body['errors'][0];
    expect(error.extensions).toMatchObject({ code: 'RATE_LIMITED', limitBytes: QUOTA, usedBytes: 200 * 1024 });
    expect(error.message).toMatch(/Daily upload limit/);
    // It says when the count starts again: the next UTC midnight.
    const now = new Date();
    const midnight = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
    expect(error.extensions.resetsAt).toBe(midnight.toISOString());
    expect(error.extensions.retryAfter).toBeGreaterThan(0);
    expect(refused.retryAfter).toBe(String(error.extensions.retryAfter));
    // Refused before the body was read: nothing reached the store, nothing was counted.
    expect(puts.length).toBe(putsBefore);
    expect(await filesOnDisk()).toBe(files);
    expect((await quota().usage(user)).usedBytes).toBe(200 * 1024);

    // What is left of the day can still be used, to the byte; another user has a day of their own.
    expectStatus(await upload(user, pdfOfSize(100 * 1024)), 201);
    expect((await quota().usage(user)).usedBytes).toBe(QUOTA);
    expectStatus(await upload(`quota-${randomUUID()}`, pdfOfSize(200 * 1024)), 201);
  });

  it('refuses a chunked upload with 429 once it passes the day’s limit while it arrives, keeping and counting nothing', async () => {
    const user = `quota-${randomUUID()}`;
    // Earlier today: 250 KiB.
    expect(await quota().reserve(user, 250 * 1024)).toMatchObject({ ok: true, granted: 250 * 1024 });
    const files = await filesOnDisk();
    const boundary = `b-${randomUUID()}`;
    const req = request(`${base}/uploads`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'x-test-user': user },
    });
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="more.pdf"\r\n\r\n`);
    req.write(pdfOfSize(100 * 1024));
    req.end(`\r\n--${boundary}--\r\n`);
    const res = await response;
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    const body = JSON.parse(await text(res)) as { errors: { extensions: Record<string, unknown> }[] };
    expect(body.errors[0]!.extensions).toMatchObject({ code: 'RATE_LIMITED', limitBytes: QUOTA });
    expect(await filesOnDisk()).toBe(files);
    expect((await quota().usage(user)).usedBytes).toBe(250 * 1024);
  });

  it('gives the bytes back when an upload is refused for another reason', async () => {
    const user = `quota-${randomUUID()}`;
    const text = Buffer.concat([Buffer.alloc(20_000, 'a'), Buffer.from([0, 1, 2, 3]), Buffer.alloc(20_000, 'b')]);
    const refused = await upload(user, text, 'notes.txt');
    expect(refused.status).toBe(415);
    expect((await quota().usage(user)).usedBytes).toBe(0);
  });
});

/** The status, checked together with the body so that a failure shows what the server said. */
function expectStatus(res: { status: number; body: unknown }, status: number): void {
  expect({ status: res.status, body: res.body }).toEqual({ status, body: expect.anything() });
}

async function text(stream: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
