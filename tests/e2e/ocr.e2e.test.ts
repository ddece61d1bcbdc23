import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { processEnv } from '../../lib/env.js';
import { findExecutable } from '../../workers/src/ingest/ocr.js';
import { TASK_FIELDS, chunksOf, createCourse, getTask, ingest, upload, waitForTask, type TaskView } from '../support/ingest.js';
import { makeScannedPdf } from '../support/pdf-fixtures.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { subscribe, type Subscription } from '../support/ws.js';

const TESSERACT = findExecutable('tesseract', processEnv().PATH);
const present = TESSERACT !== null && findExecutable('pdftoppm', processEnv().PATH) !== null;
if (!present) console.warn('skipped: OCR needs tesseract (tesseract-ocr, tesseract-ocr-eng) and pdftoppm (poppler-utils)');
const suite = present ? describe : describe.skip;

/** Each page with words found nowhere else, and enough text to be worth indexing. */
const PAGES = [
  ['Photosynthesis converts light energy into chemical energy; the quetzalcoatlus sentence lives on page one of this scan.'],
  ['Stomata regulate gas exchange between the leaf and the air, and the axolotl sentence lives on page two.'],
  ['Cellular respiration releases the energy stored in glucose, and the narwhal sentence closes page three.'],
];
const UNIQUE = ['quetzalcoatlus', 'axolotl', 'narwhal'];

const SEARCH = `query($c: ID!, $q: String!) { search(courseId: $c, query: $q, limit: 10) { text pageStart pageEnd document { id } } }`;
const DOCUMENT = `query($id: ID!) { document(id: $id) { status pages chunkCount ocrPages ocrConfidence ocrSkippedPages } }`;

interface DocumentView {
  status: string;
  pages: number;
  chunkCount: number;
  ocrPages: number[];
  ocrConfidence: number | null;
  ocrSkippedPages: number[];
}

/** Whether a process still runs (a zombie, killed and waiting to be reaped, does not). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2)[0]!);
  } catch {
    return false;
  }
}

/** Live processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text) && running(Number(pid));
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function eventually(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`still not true after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

suite('OCR of scanned PDF pages during ingestion', () => {
  let stack: TestStack;
  let token: string;
  let dir: string;
  /** The worker's "tesseract": tesseract itself, except on the page number written in `hangFlag`, where it sleeps. */
  let hangFlag: string;
  let hangPid: string;
  const open: Subscription<unknown>[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ocr-e2e-'));
    hangFlag = join(dir, 'hang-page');
    hangPid = join(dir, 'hang-pid');
    const stub = join(dir, 'tesseract.sh');
    await writeFile(
      stub,
      [
        '#!/bin/sh',
        `case "$1" in */page-$(cat '${hangFlag}' 2>/dev/null).pgm) echo "$$ $1" > '${hangPid}'; exec sleep 600 ;; esac`,
        `exec '${TESSERACT}' "$@"`,
        '',
      ].join('\n'),
    );
    await chmod(stub, 0o755);
    stack = await startTestStack({
      workers: 1,
      worker: {
        OCR_TESSERACT_BIN: stub,
        // Long enough for a real page on a busy machine, short enough to wait for a hanging one.
        OCR_PAGE_TIMEOUT_MS: '20000',
        OCR_CONCURRENCY: '2',
      },
    });
    token = await stack.token(stack.user('teacher'), 'TEACHER');
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.dispose()));
    await rm(hangFlag, { force: true });
    await rm(hangPid, { force: true });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** The process hanging in place of tesseract, and the image it was given (in the parser's scratch directory). */
  async function hung(): Promise<{ pid: number; image: string }> {
    await eventually(() => existsSync(hangPid) && readFileSync(hangPid, 'utf8').endsWith('\n'), 'the hanging tesseract started', 120_000);
    const [pid, image] = (await readFile(hangPid, 'utf8')).trim().split(' ');
    return { pid: Number(pid), image: image! };
  }

  async function ingestPdf(title: string, bytes: Buffer) {
    const courseId = await createCourse(stack, token, title);
    const up = await upload(stack, token, bytes, `${title}.pdf`);
    expect(up.status).toBe(201);
    const task = await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title });
    return { courseId, task };
  }

  async function documentOf(id: string): Promise<DocumentView> {
    const res = await stack.gql<{ document: DocumentView }>(DOCUMENT, { id }, { token });
    expect(res.body.errors).toBeUndefined();
    return res.body.data!.document;
  }

  /** The pages of the passages a search finds in this document. */
  async function pagesFound(courseId: string, documentId: string, query: string): Promise<number[]> {
    const res = await stack.gql<{ search: { pageStart: number; pageEnd: number; document: { id: string } }[] }>(
      SEARCH,
      { c: courseId, q: query },
      { token },
    );
    expect(res.body.errors).toBeUndefined();
    return res.body.data!.search.filter((p) => p.document.id === documentId).map((p) => p.pageStart);
  }

  it('ingests a scanned PDF: its text is searchable, each passage citing its page, and the document says which pages OCR read', async () => {
    const { courseId, task } = await ingestPdf('Scanned', await makeScannedPdf(PAGES, { headings: ['Light', null, 'Energy'] }));
    const done = await waitForTask(stack, token, task.id, 300_000);
    expect({ status: done.status, error: done.error }).toEqual({ status: 'COMPLETED', error: null });
    expect(done.message).toMatch(/passages? from 3 pages \(3 pages read by OCR, mean confidence \d+%\)$/);
    const documentId = done.document!.id;
    const doc = await documentOf(documentId);
    expect(doc).toMatchObject({ status: 'READY', pages: 3, ocrPages: [1, 2, 3], ocrSkippedPages: [] });
    expect(doc.ocrConfidence).toBeGreaterThan(80);
    expect(doc.ocrConfidence).toBeLessThanOrEqual(100);
    // Each page's own words find it, and only it.
    for (const [i, word] of UNIQUE.entries())
      expect({ word, pages: await pagesFound(courseId, documentId, word) }).toEqual({ word, pages: [i + 1] });
    // Every passage is within one page.
    const chunks = await chunksOf(documentId);
    expect(chunks.length).toBeGreaterThan(0);
    for (const c of chunks) expect(c.pageEnd).toBe(c.pageStart);
    expect(chunks.find((c) => c.text.includes('axolotl'))?.pageStart).toBe(2);
  });

  it('reads a PDF with one text page and one image-only page: both pages searchable, only the image page OCR’d', async () => {
    const { courseId, task } = await ingestPdf('Mixed', await makeScannedPdf(PAGES.slice(0, 2), { textPages: [1] }));
    const done = await waitForTask(stack, token, task.id, 300_000);
    expect(done.status).toBe('COMPLETED');
    expect(done.message).toMatch(/\(1 page read by OCR, mean confidence \d+%\)$/);
    const documentId = done.document!.id;
    expect(await documentOf(documentId)).toMatchObject({ pages: 2, ocrPages: [2], ocrSkippedPages: [] });
    expect(await pagesFound(courseId, documentId, 'quetzalcoatlus')).toEqual([1]);
    expect(await pagesFound(courseId, documentId, 'axolotl')).toEqual([2]);
  });

  it('kills a page that hangs the OCR engine at its time limit; the document completes with that page counted as skipped', async () => {
    await writeFile(hangFlag, '2');
    const { courseId, task } = await ingestPdf('Hanging', await makeScannedPdf(PAGES));
    const { pid } = await hung();
    // While the page hangs, the task says it is reading pages by OCR.
    const watch = subscribe<{ taskUpdated: TaskView }>(
      stack.routerUrl,
      token,
      `subscription($id: ID!) { taskUpdated(id: $id) { ${TASK_FIELDS} } }`,
      {
        id: task.id,
      },
    );
    open.push(watch as Subscription<unknown>);
    const reading = await watch.until((d) => d.taskUpdated.status === 'RUNNING' && /\(OCR\)$/.test(d.taskUpdated.message ?? ''), 60_000);
    expect(reading.taskUpdated.message).toMatch(/^Reading page [1-3] of 3 \(OCR\)$/);

    const done = await waitForTask(stack, token, task.id, 300_000);
    expect(done.status).toBe('COMPLETED');
    expect(done.message).toMatch(/\(2 pages read by OCR, mean confidence \d+%; 1 page skipped: .* \(page 2\)\)$/);
    expect(running(pid)).toBe(false);
    const documentId = done.document!.id;
    expect(await documentOf(documentId)).toMatchObject({ status: 'READY', pages: 3, ocrPages: [1, 3], ocrSkippedPages: [2] });
    expect(await pagesFound(courseId, documentId, 'quetzalcoatlus')).toEqual([1]);
    expect(await pagesFound(courseId, documentId, 'narwhal')).toEqual([3]);
    expect(await pagesFound(courseId, documentId, 'axolotl')).toEqual([]);
  });

  it('cancelling mid-OCR leaves nothing: no passages, no OCR process, no scratch files', async () => {
    await writeFile(hangFlag, '1');
    const { task } = await ingestPdf('Cancelled', await makeScannedPdf(PAGES));
    const { pid, image } = await hung();
    const scratch = dirname(image);
    expect(existsSync(scratch)).toBe(true);
    const cancelled = await stack.gql<{ cancelTask: { status: string } }>(
      'mutation($id: ID!) { cancelTask(id: $id) { status } }',
      { id: task.id },
      { token },
    );
    expect(cancelled.body.data?.cancelTask.status).toBe('CANCELLED');
    // The worker notices and stops.
    const worker = stack.services['worker-1']!;
    await eventually(
      () => worker.lines.some((l) => l.includes('ingestion stopped') && l.includes(task.id)),
      'the worker stopped the ingestion',
    );
    const final = await getTask(stack, token, task.id);
    expect(final.status).toBe('CANCELLED');
    expect(final.document?.status).toBe('FAILED');
    expect(final.document?.error?.code).toBe('CANCELLED');
    expect(await chunksOf(final.document!.id)).toEqual([]);
    expect(running(pid)).toBe(false);
    expect(existsSync(scratch)).toBe(false);
    expect(processesMentioning(scratch)).toEqual([]);
    // The worker goes on reading scanned pages.
    await rm(hangFlag);
    const next = await ingestPdf('After cancel', await makeScannedPdf(PAGES.slice(2)));
    expect((await waitForTask(stack, token, next.task.id, 300_000)).status).toBe('COMPLETED');
  });
});
