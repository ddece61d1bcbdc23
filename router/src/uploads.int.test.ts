import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import express from 'express';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createLocalBlobStore } from '@lib/blob/local.js';
import { isRole } from '@lib/identity.js';
import { consumeUpload, getUpload, type UploadMeta } from '@lib/uploads.js';
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

  before(async () => {
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

  after(async () => {
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
    assert.equal(status, 201, JSON.stringify(body));
    assert.deepEqual(Object.keys(body).sort(), ['filename', 'format', 'sha256', 'size', 'uploadId']);
    assert.equal(body['format'], 'PDF');
    assert.equal(body['size'], PDF.length);
    assert.equal(body['sha256'], sha256(PDF));
    assert.equal(body['filename'], 'notes.txt');

    const meta = (await getUpload(redis, body['uploadId'])) as UploadMeta;
    const now = new Date();
    const month = String(now.getUTCMonth() + 1).padStart(2, '0');
    assert.deepEqual(meta, {
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
    assert.ok(Math.abs(Date.parse(meta.createdAt) - Date.now()) < 10_000);
    const ttl = await redis.ttl(`upload:${meta.id}`);
    assert.ok(ttl > TTL_S - 10 && ttl <= TTL_S, `ttl ${ttl}`);

    const onDisk = await readFile(join(root, meta.blobKey));
    assert.equal(sha256(onDisk), body['sha256']);
    assert.equal((await stat(join(root, meta.blobKey))).mode & 0o777, 0o640);

    const stored = await waitForLog('upload stored');
    assert.equal(stored['uploadId'], meta.id);
    assert.equal(stored['size'], PDF.length);
    assert.equal(stored['format'], 'PDF');
    assert.equal(typeof stored['reqId'], 'string');
  });

  it('detects Markdown, ignores other fields, and sanitises the filename', async () => {
    const md = Buffer.from('# Cells\n\nEvery living thing is made of **cells**.\n\n- nucleus\n- membrane\n');
    const name = `../../etc/\u202Eevil\u200B ${'n'.repeat(300)}.md`;
    const { status, body } = await upload([{ data: md, name }], { fields: { title: 'ignored', note: 'also ignored' } });
    assert.equal(status, 201, JSON.stringify(body));
    assert.equal(body['format'], 'MARKDOWN');
    assert.equal(body['filename'], sanitizeFilename(name));
    assert.equal(body['filename'].length, 200);
    assert.ok(body['filename'].startsWith('evil n'));
    assert.equal((await getUpload(redis, body['uploadId']))?.mime, 'text/markdown');
  });

  it('keeps a UTF-8 filename intact', async () => {
    const { status, body } = await upload([{ data: Buffer.from('Bonjour à tous.\n'), name: 'leçon één.txt' }]);
    assert.equal(status, 201, JSON.stringify(body));
    assert.equal(body['filename'], 'leçon één.txt');
    assert.equal(body['format'], 'TEXT');
  });

  it('accepts a file of exactly the limit', async () => {
    const data = pdfOfSize(MAX_BYTES);
    const { status, body } = await upload([{ data, name: 'exact.pdf' }]);
    assert.equal(status, 201, JSON.stringify(body));
    assert.equal(body['size'], MAX_BYTES);
  });

  it('refuses a file over the limit with 413 from its Content-Length, storing nothing', async () => {
    const before = await filesOnDisk();
    const { status, body } = await upload([{ data: pdfOfSize(2 * MAX_BYTES), name: 'big.pdf' }]);
    assert.equal(status, 413);
    assert.equal(body['errors'][0].extensions.code, 'PAYLOAD_TOO_LARGE');
    assert.equal(body['errors'][0].extensions.maxBytes, MAX_BYTES);
    assert.deepEqual(await filesOnDisk(), before);
    const refused = await waitForLog('upload refused');
    assert.equal(await redis.exists(`upload:${refused['uploadId']}`), 0);
  });

  it('refuses a file one byte over the limit that fits in the form overhead, deleting the partial blob', async () => {
    const before = await filesOnDisk();
    const { status, body } = await upload([{ data: pdfOfSize(MAX_BYTES + 1), name: 'big.pdf' }]);
    assert.equal(status, 413);
    assert.equal(body['errors'][0].extensions.code, 'PAYLOAD_TOO_LARGE');
    assert.deepEqual(await filesOnDisk(), before);
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
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.pdf"\r\n\r\n`);
    req.write(PDF);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const sendLimit = 256 * 1024 * 1024;
    let written = 0;
    while (!response && !failed && written < sendLimit) {
      written += chunk.length;
      if (!req.write(chunk)) await Promise.race([new Promise((r) => req.once('drain', r)), settled]);
    }
    await settled;
    assert.ok(response, 'no response before the connection failed');
    assert.equal(response.statusCode, 413);
    const body = JSON.parse(await text(response)) as { errors: { extensions: { code: string } }[] };
    assert.equal(body.errors[0]!.extensions.code, 'PAYLOAD_TOO_LARGE');
    assert.ok(written < 64 * 1024 * 1024, `the server read ${written} bytes before answering`);
    req.destroy();
    assert.deepEqual(await filesOnDisk(), before);
  });

  it('refuses a PNG named .pdf with 415, naming what it is, storing nothing', async () => {
    const before = await filesOnDisk();
    const { status, body } = await upload([{ data: PNG, name: 'slides.pdf', type: 'application/pdf' }]);
    assert.equal(status, 415);
    assert.deepEqual(body['errors'][0], {
      message: 'This looks like a PNG image. Upload PDF, Markdown, plain text or HTML.',
      extensions: { code: 'UNSUPPORTED_TYPE', detected: 'a PNG image' },
    });
    assert.deepEqual(await filesOnDisk(), before);
  });

  it('refuses a ZIP with a message naming it', async () => {
    const zip = Buffer.concat([Buffer.from([0x50, 0x4b, 3, 4]), Buffer.alloc(26), Buffer.from('data.csv'), randomBytes(500)]);
    const { status, body } = await upload([{ data: zip, name: 'lesson.md' }]);
    assert.equal(status, 415);
    assert.equal(
      body['errors'][0].message,
      'This looks like a ZIP archive (for example a .docx). Upload PDF, Markdown, plain text or HTML.',
    );
  });

  it('refuses text that turns binary after the first bytes, deleting what was written', async () => {
    const before = await filesOnDisk();
    const data = Buffer.concat([Buffer.from('plain words\n'.repeat(5000)), Buffer.from([0, 1, 2, 3]), Buffer.from('more\n')]);
    const { status, body } = await upload([{ data, name: 'notes.txt' }]);
    assert.equal(status, 415);
    assert.equal(body['errors'][0].extensions.detected, 'a binary file');
    assert.deepEqual(await filesOnDisk(), before);
  });

  it('refuses students with 403 FORBIDDEN and requests without identity with 401', async () => {
    const before = await filesOnDisk();
    const student = await upload([{ data: PDF, name: 'a.pdf' }], { role: 'STUDENT' });
    assert.equal(student.status, 403);
    assert.deepEqual(student.body['errors'][0], {
      message: 'Only teachers can upload course material',
      extensions: { code: 'FORBIDDEN' },
    });
    const anonymous = await upload([{ data: PDF, name: 'a.pdf' }], { role: 'nobody' });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body['errors'][0].extensions.code, 'UNAUTHENTICATED');
    const admin = await upload([{ data: PDF, name: 'a.pdf' }], { role: 'ADMIN' });
    assert.equal(admin.status, 201);
    assert.equal((await filesOnDisk()).length, before.length + 1);
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
      assert.equal(status, 400, `${name}: ${JSON.stringify(body)}`);
      assert.equal(body['errors'][0].extensions.code, 'BAD_USER_INPUT', name);
      assert.equal(typeof body['errors'][0].message, 'string', name);
    }
    assert.deepEqual(await filesOnDisk(), before);
  });

  it('lets an upload be consumed once, and only by its owner', async () => {
    const { status, body } = await upload([{ data: PDF, name: 'mine.pdf' }], { user: 'teacher-a' });
    assert.equal(status, 201);
    const id = body['uploadId'] as string;

    assert.equal(await consumeUpload(redis, id, 'teacher-b'), null);
    assert.equal((await getUpload(redis, id))?.ownerId, 'teacher-a', 'a refused consume leaves the upload in place');

    const results = await Promise.all([consumeUpload(redis, id, 'teacher-a'), consumeUpload(redis, id, 'teacher-a')]);
    assert.equal(results.filter((r) => r !== null).length, 1, 'exactly one concurrent consume wins');
    const meta = results.find((r) => r !== null)!;
    assert.equal(meta.id, id);
    assert.equal(meta.sha256, sha256(PDF));
    assert.equal(await consumeUpload(redis, id, 'teacher-a'), null);
    assert.equal(await getUpload(redis, id), null);
    assert.equal(await consumeUpload(redis, 'not-a-uuid', 'teacher-a'), null);
    assert.equal(await getUpload(redis, randomUUID()), null);
  });

  it('leaves nothing behind when the client aborts mid-upload, and keeps serving', async () => {
    const before = await filesOnDisk();
    const boundary = `b-${randomUUID()}`;
    const req = request(`${base}/uploads`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'x-test-role': 'TEACHER' },
    });
    req.on('error', () => {});
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="partial.pdf"\r\n\r\n`);
    req.write(pdfOfSize(100 * 1024));
    // Wait until the blob is being written (a temporary file exists), then hang up.
    const deadline = Date.now() + 5000;
    while (!(await filesOnDisk()).some((f) => f.includes('.tmp-'))) {
      assert.ok(Date.now() < deadline, 'the upload never started writing');
      await new Promise((r) => setTimeout(r, 10));
    }
    req.destroy();

    const aborted = await waitForLog('upload aborted by client');
    assert.deepEqual(await filesOnDisk(), before);
    assert.equal(await redis.exists(`upload:${aborted['uploadId']}`), 0);

    const next = await upload([{ data: PDF, name: 'after.pdf' }]);
    assert.equal(next.status, 201);
  });
});

async function text(stream: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
