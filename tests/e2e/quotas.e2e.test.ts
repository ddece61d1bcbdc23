import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createDailyUploadQuota } from '../../lib/uploads.js';
import { testInfra } from '../support/infra.js';
import { blobKeyOf, createCourse, upload } from '../support/ingest.js';
import { startTestStack, type TestStack } from '../support/stack.js';

/** The router's default MAX_BODY_BYTES. */
const MAX_BODY_BYTES = 6 * 1024 * 1024;
const DAILY_BYTES = 16 * 1024 * 1024;
const COURSE_BYTES = 4 * 1024 * 1024;
const INGEST = 'mutation($i: IngestDocumentInput!) { ingestDocument(input: $i) { id status document { id } } }';
const REINDEX = 'mutation($c: ID!) { reindexCourse(courseId: $c) { id status } }';

interface GqlError {
  message: string;
  extensions: Record<string, unknown>;
}

/** A PDF of `size` bytes: a header, then filler (the worker fails it fast; its file stays until deleted). */
const pdfOfSize = (size: number) => Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(size - 9, 0x20)]);
/** JSON with every non-ASCII character escaped (`\uXXXX`), as Python's json.dumps writes it by default. */
const asciiJson = (value: unknown) =>
  JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

describe('quotas: body size, daily upload bytes, course storage, one re-index per course', () => {
  let stack: TestStack;
  let redis: Redis;
  let db: pg.Client;
  const quota = () => createDailyUploadQuota(redis, DAILY_BYTES);

  beforeAll(async () => {
    const quotas = { UPLOAD_DAILY_BYTES_PER_USER: String(DAILY_BYTES), COURSE_STORAGE_BYTES: String(COURSE_BYTES) };
    stack = await startTestStack({ router: { UPLOAD_DAILY_BYTES_PER_USER: String(DAILY_BYTES) }, subgraphs: quotas });
    redis = new Redis(testInfra().REDIS_URL);
    db = new pg.Client({ connectionString: testInfra().DIRECT_DATABASE_URL });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await redis?.quit();
    await stack?.stop();
  });

  const teacher = async (name: string) => {
    const user = stack.user(name);
    return { user, token: await stack.token(user, 'TEACHER') };
  };
  const post = async (body: string, token: string) => {
    const res = await fetch(stack.routerUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body,
    });
    return { status: res.status, body: (await res.json()) as { data?: Record<string, any> | null; errors?: GqlError[] } };
  };
  const ingest = (token: string, input: Record<string, unknown>) =>
    stack.gql<{ ingestDocument: { id: string; status: string; document: { id: string } | null } }>(INGEST, { i: input }, { token });
  const cancel = (token: string, id: string) => stack.gql('mutation($id: ID!) { cancelTask(id: $id) { status } }', { id }, { token });

  it('takes a 1,000,000-character paste however its JSON is escaped, and refuses a larger body with 413 PAYLOAD_TOO_LARGE', async () => {
    const { token } = await teacher('paste');
    const courseId = await createCourse(stack, token, 'A million characters');
    // Three UTF-8 bytes a character, and six in the JSON once escaped: the worst any encoder writes.
    const text = '漢字のテキスト。'.repeat(125_000);
    expect(text.length).toBe(1_000_000);
    const body = asciiJson({ query: INGEST, variables: { i: { courseId, title: 'A million characters', text, format: 'TEXT' } } });
    expect(Buffer.byteLength(body)).toBeGreaterThan(6_000_000);
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    const pasted = await post(body, token);
    expect(pasted.body.errors).toBeUndefined();
    expect(pasted.status).toBe(200);
    const task = pasted.body.data!['ingestDocument'] as { id: string; document: { id: string } };
    // Stored whole: three bytes a character.
    const blobKey = await blobKeyOf(task.document.id);
    expect(statSync(join(stack.blobDir, blobKey!)).size).toBe(3_000_000);
    await cancel(token, task.id); // spare the shared workers a long ingestion

    // One byte over the limit.
    const head = '{"query":"{ __typename }","variables":{"pad":"';
    const tail = '"}}';
    const over = head + 'x'.repeat(MAX_BODY_BYTES + 1 - head.length - tail.length) + tail;
    expect(Buffer.byteLength(over)).toBe(MAX_BODY_BYTES + 1);
    const refused = await post(over, token);
    expect(refused.status).toBe(413);
    expect(refused.body.errors?.[0]?.extensions).toEqual({ code: 'PAYLOAD_TOO_LARGE', maxBytes: MAX_BODY_BYTES });
  });

  it('counts pasted text with the day’s uploads, refusing past the limit with RATE_LIMITED and when the count starts again', async () => {
    const { user, token } = await teacher('daily');
    const courseId = await createCourse(stack, token, 'Daily');
    // Earlier today: all but 1,000 bytes of the day's allowance.
    expect(await quota().reserve(user, DAILY_BYTES - 1000)).toMatchObject({ ok: true });

    const tooMuch = await ingest(token, { courseId, title: 'Too much', text: 'a'.repeat(2000), format: 'TEXT' });
    const error = tooMuch.body.errors?.[0];
    expect(error?.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      limitBytes: DAILY_BYTES,
      usedBytes: DAILY_BYTES - 1000,
      requestedBytes: 2000,
    });
    const now = new Date();
    const midnight = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
    expect(error?.extensions?.['resetsAt']).toBe(midnight.toISOString());
    expect(error?.extensions?.['retryAfter']).toEqual(expect.any(Number));
    expect(error?.message).toMatch(/Daily upload limit/);

    // What is left still fits, and is counted.
    const fits = await ingest(token, { courseId, title: 'Fits', text: 'b'.repeat(600), format: 'TEXT' });
    expect(fits.body.errors).toBeUndefined();
    expect((await quota().usage(user)).usedBytes).toBe(DAILY_BYTES - 400);

    // The router's POST /uploads counts against the same day.
    const file = await upload(stack, token, pdfOfSize(1000), 'notes.pdf');
    expect(file.status).toBe(429);
    expect(file.body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
  });

  it('refuses an ingestion the course’s storage has no room for with QUOTA_EXCEEDED, gives the upload back, and makes room when a document goes', async () => {
    const { user, token } = await teacher('storage');
    const courseId = await createCourse(stack, token, 'Full');
    const otherCourse = await createCourse(stack, token, 'Empty');
    const big = await upload(stack, token, pdfOfSize(3.5 * 1024 * 1024), 'big.pdf');
    expect(big.status).toBe(201);
    const first = await ingest(token, { courseId, uploadId: big.body.uploadId, title: 'Big' });
    expect(first.body.errors).toBeUndefined();
    const usedToday = (await quota().usage(user)).usedBytes;

    // Pasted text that does not fit: refused, and not counted against the day.
    const text = 't'.repeat(1_000_000);
    const pasted = await ingest(token, { courseId, title: 'Too big', text, format: 'TEXT' });
    expect(pasted.body.errors?.[0]?.extensions).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      limitBytes: COURSE_BYTES,
      usedBytes: 3.5 * 1024 * 1024,
      requestedBytes: 1_000_000,
    });
    expect(pasted.body.errors?.[0]?.message).toMatch(/storage is full/);
    expect((await quota().usage(user)).usedBytes).toBe(usedToday);

    // An upload that does not fit: refused, and still usable elsewhere.
    const more = await upload(stack, token, pdfOfSize(1024 * 1024), 'more.pdf');
    expect(more.status).toBe(201);
    const refused = await ingest(token, { courseId, uploadId: more.body.uploadId, title: 'More' });
    expect(refused.body.errors?.[0]?.extensions?.['code']).toBe('QUOTA_EXCEEDED');
    const elsewhere = await ingest(token, { courseId: otherCourse, uploadId: more.body.uploadId, title: 'More' });
    expect(elsewhere.body.errors).toBeUndefined();

    // Deleting the big document frees its room.
    const deleted = await stack.gql<{ deleteDocument: boolean }>(
      'mutation($id: ID!) { deleteDocument(id: $id) }',
      { id: first.body.data!.ingestDocument.document!.id },
      { token },
    );
    expect(deleted.body.data?.deleteDocument).toBe(true);
    const now = await ingest(token, { courseId, title: 'Fits now', text, format: 'TEXT' });
    expect(now.body.errors).toBeUndefined();
    await cancel(token, now.body.data!.ingestDocument.id);
  });

  it('runs one re-index per course: while one is ACCEPTED or RUNNING, reindexCourse returns it', async () => {
    const { user, token } = await teacher('reindex');
    const courseId = await createCourse(stack, token, 'Re-index');
    // A re-index a worker is running (written as the worker leaves it).
    const running = randomUUID();
    await db.query(
      `INSERT INTO "Task" (id, kind, status, "ownerId", "courseId", payload, message, attempts, "startedAt", "updatedAt")
       VALUES ($1, 'REINDEX_COURSE', 'RUNNING', $2, $3, $4, 'Re-indexing', 1, now(), now())`,
      [running, user, courseId, JSON.stringify({ taskId: running, courseId })],
    );
    const again = await stack.gql<{ reindexCourse: { id: string; status: string } }>(REINDEX, { c: courseId }, { token });
    expect(again.body.data?.reindexCourse).toEqual({ id: running, status: 'RUNNING' });
    // Once it is over, a new one starts.
    expect((await cancel(token, running)).body.errors).toBeUndefined();
    const next = await stack.gql<{ reindexCourse: { id: string; status: string } }>(REINDEX, { c: courseId }, { token });
    expect(next.body.data?.reindexCourse.id).toEqual(expect.any(String));
    expect(next.body.data?.reindexCourse.id).not.toBe(running);

    // Requests at the same moment: held at the course's lock until all three wait there, they get one task.
    const fresh = await createCourse(stack, token, 'Re-index at once');
    const key = `reindex:${fresh}`;
    await db.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
    let calls: Promise<{ body: { data?: { reindexCourse: { id: string } } | null } }>[] = [];
    try {
      calls = [1, 2, 3].map(() => stack.gql<{ reindexCourse: { id: string } }>(REINDEX, { c: fresh }, { token }));
      const deadline = Date.now() + 30_000;
      for (;;) {
        const { rows } = await db.query<{ n: number }>(
          `WITH key AS (SELECT hashtextextended($1, 0) AS k)
           SELECT count(*)::int AS n FROM pg_locks l, key
           WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1
             AND l.classid::text::bigint = ((key.k >> 32) & 4294967295) AND l.objid::text::bigint = (key.k & 4294967295)`,
          [key],
        );
        if (rows[0]!.n === 3) break;
        if (Date.now() > deadline) throw new Error(`only ${rows[0]!.n} of 3 requests reached the lock`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await db.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
    }
    const ids = (await Promise.all(calls)).map((r) => r.body.data?.reindexCourse.id);
    expect(ids[0]).toEqual(expect.any(String));
    expect(new Set(ids).size).toBe(1);
  });
});
