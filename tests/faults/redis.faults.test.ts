/**
 * Redis killed with SIGKILL while twelve ingestions are queued and running, then started again
 * from its append-only file. Nothing is lost or done twice: every task reaches COMPLETED once,
 * every document has exactly the chunks the same file gives when nothing fails. While Redis is
 * down the router keeps answering what does not need it (its rate limiter falls back to memory),
 * and what does need it (uploads, starting an ingestion) is refused as SERVICE_UNAVAILABLE with
 * Retry-After, or accepted and left to the reconciler, never an internal error. It recovers by
 * itself.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { makeLargePdf } from '../support/pdf-fixtures.js';
import { ingest, upload, waitForTask, type TaskView } from '../support/ingest.js';
import { logEntries, startTestStack, type TestStack } from '../support/stack.js';
import { faultsInfra, INTERNALS, restartInfra, signalService, sleep } from '../support/faults.js';

const DOCUMENTS = 12;

async function chunkFacts(documentId: string) {
  const client = new pg.Client({ connectionString: faultsInfra().DIRECT_DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string; positions: string }>(
      'SELECT count(*) AS n, count(DISTINCT position) AS positions FROM "Chunk" WHERE "documentId" = $1',
      [documentId],
    );
    return { chunks: Number(rows[0]!.n), positions: Number(rows[0]!.positions) };
  } finally {
    await client.end();
  }
}

describe('Redis killed during ingestions', () => {
  let stack: TestStack;
  let token: string;
  let courseId: string;
  let pdf: Buffer;

  beforeAll(async () => {
    stack = await startTestStack({ infra: faultsInfra(), router: { RATE_LIMIT_TEACHER: '100000' } });
    token = await stack.token(stack.user('redis-faults'), 'TEACHER');
    const made = await stack.gql<{ createCourse: { id: string } }>(
      'mutation { createCourse(input: { title: "Redis faults", description: "d" }) { id } }',
      {},
      { token },
    );
    courseId = made.body.data!.createCourse.id;
    pdf = await makeLargePdf(20);
  }, 180_000);

  afterAll(async () => {
    await restartInfra();
    await stack?.stop();
  }, 120_000);

  /** Pasted text with an idempotency key: sent while Redis is down, and again (the client retrying) after. */
  const paste = () =>
    stack.gql<{ ingestDocument: TaskView | null }>(
      'mutation($i: IngestDocumentInput!) { ingestDocument(input: $i) { id status } }',
      {
        i: {
          courseId,
          title: 'pasted while down',
          text: '# While Redis was down\n\nPhotosynthesis turns light into sugar.',
          idempotencyKey: 'while-down',
        },
      },
      { token },
    );

  it('loses nothing, does nothing twice, refuses cleanly while down and recovers by itself', async () => {
    // The reference: the same file ingested with nothing failing.
    const refUpload = await upload(stack, token, pdf, 'reference.pdf');
    const reference = await waitForTask(
      stack,
      token,
      (await ingest(stack, token, { courseId, title: 'reference', uploadId: refUpload.body.uploadId })).id,
      120_000,
    );
    expect(reference.status).toBe('COMPLETED');
    const expected = await chunkFacts(reference.document!.id);
    expect(expected.chunks).toBeGreaterThan(10);

    const uploads = await Promise.all(Array.from({ length: DOCUMENTS }, (_, i) => upload(stack, token, pdf, `doc-${i}.pdf`)));
    const tasks: TaskView[] = [];
    for (const [i, u] of uploads.entries()) {
      expect(u.status).toBe(201);
      tasks.push(await ingest(stack, token, { courseId, title: `doc ${i}`, uploadId: u.body.uploadId }));
    }
    // Some running, the rest queued.
    await sleep(300);
    await signalService('redis', 'SIGKILL');
    const downAt = Date.now();

    // What needs only PostgreSQL still works.
    const mine = await stack.gql<{ myCourses: { id: string }[] }>('{ myCourses { id } }', {}, { token });
    expect(mine.status).toBe(200);
    expect(mine.body.data!.myCourses.map((c) => c.id)).toContain(courseId);

    // An upload needs Redis (its record): refused as unavailable, with Retry-After.
    const refused = await fetch(stack.routerUrl.replace('/graphql', '/uploads'), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: (() => {
        const form = new FormData();
        form.append('file', new Blob([pdf]), 'while-down.pdf');
        return form;
      })(),
    });
    const refusedBody = (await refused.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect({ status: refused.status, code: refusedBody.errors[0]!.extensions.code }).toEqual({
      status: 503,
      code: 'SERVICE_UNAVAILABLE',
    });
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refusedBody.errors[0]!.message).not.toMatch(INTERNALS);

    // Starting an ingestion of pasted text: accepted (the reconciler enqueues it later) or refused
    // as unavailable; never an internal error.
    const pasted = await paste();
    const pastedCodes = pasted.body.errors?.map((e) => e.extensions?.['code']) ?? [];
    expect(pastedCodes.every((c) => c === 'SERVICE_UNAVAILABLE')).toBe(true);
    for (const e of pasted.body.errors ?? []) expect(e.message).not.toMatch(INTERNALS);
    if (pastedCodes.length) expect(pasted.headers.get('retry-after')).toMatch(/^\d+$/);
    const downFor = Date.now() - downAt;

    await sleep(Math.max(0, 3000 - downFor));
    await restartInfra(); // from its append-only file
    const backAt = Date.now();

    // The client retries what was refused, with the same idempotency key: one task either way.
    const retried = await paste();
    expect(retried.body.errors).toBeUndefined();
    if (pasted.body.data?.ingestDocument) expect(retried.body.data!.ingestDocument!.id).toBe(pasted.body.data.ingestDocument.id);

    const finals = await Promise.all([...tasks, retried.body.data!.ingestDocument!].map((t) => waitForTask(stack, token, t.id, 240_000)));
    const recoveredMs = Date.now() - backAt;
    for (const task of finals) expect(task.status).toBe('COMPLETED');
    for (const task of finals.slice(0, DOCUMENTS)) {
      // The same chunks as the reference, each once.
      expect(await chunkFacts(task.document!.id)).toEqual(expected);
      expect(task.document!.chunkCount).toBe(expected.chunks);
    }
    // Each task's work was completed once: the worker logs "document ingested" at each commit.
    const ingested = logEntries(stack.services['worker-1']!.lines).filter((e) => e['msg'] === 'document ingested');
    for (const task of finals) expect(ingested.filter((e) => e['taskId'] === task.id)).toHaveLength(1);
    // And no document was created twice.
    const client = new pg.Client({ connectionString: faultsInfra().DIRECT_DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM "Document" WHERE "courseId" = $1', [courseId]);
      expect(Number(rows[0]!.n)).toBe(DOCUMENTS + 2); // the reference, twelve, the pasted one: nothing created twice
    } finally {
      await client.end();
    }

    // Uploads work again without restarting anything.
    const after = await upload(stack, token, pdf, 'after.pdf');
    expect(after.status).toBe(201);
    console.log(
      `redis killed: ${DOCUMENTS} ingestions all completed ${recoveredMs} ms after Redis came back; paste while down: ${pastedCodes.length ? 'refused' : 'accepted'}`,
    );
  }, 400_000);
});
