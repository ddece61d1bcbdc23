import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { chunksOf, createCourse, ingest, upload, waitForTask } from '../support/ingest.js';
import { startTestStack, type TestStack } from '../support/stack.js';

/** The real PDFs in ../shared/corpus/pdfs and the outcome ../shared/corpus/README.md gives for each. */
const CORPUS = new URL('../../../shared/corpus/pdfs/', import.meta.url);
const EXPECTED: Record<string, { status: 'COMPLETED'; pages: number; waitMs?: number } | { status: 'FAILED'; code: string }> = {
  'tracemonkey.pdf': { status: 'COMPLETED', pages: 14 },
  // pdfjs extracts 65,000 characters, but pages 2-22 are control characters (fonts without a text mapping):
  // those are read by OCR (about 2-3 s a page on one core), pages 1 and 23 from their text layer.
  'TAMReview.pdf': { status: 'COMPLETED', pages: 23, waitMs: 8 * 60_000 },
  '160F-2019.pdf': { status: 'COMPLETED', pages: 1 },
  'alphatrans.pdf': { status: 'COMPLETED', pages: 1 },
  'empty.pdf': { status: 'FAILED', code: 'NO_TEXT' },
  'empty_protected.pdf': { status: 'FAILED', code: 'NO_TEXT' },
  'encrypted-attachment.pdf': { status: 'FAILED', code: 'ENCRYPTED_PDF' },
  'GHOSTSCRIPT-698804-1-fuzzed.pdf': { status: 'FAILED', code: 'NO_TEXT' },
  'PDFBOX-3148-2-fuzzed.pdf': { status: 'FAILED', code: 'NO_TEXT' },
  'poppler-742-0-fuzzed.pdf': { status: 'FAILED', code: 'MALFORMED_FILE' },
};
const present = existsSync(CORPUS);
if (!present) console.warn(`skipped: ${CORPUS.pathname} is absent (this tier needs ../shared/corpus)`);
const suite = present ? describe : describe.skip;

suite('ingestion of the shared corpus', () => {
  let stack: TestStack;
  let token: string;
  let courseId: string;
  /** TAMReview.pdf's document, once ingested. */
  let tamReview: string | undefined;
  beforeAll(async () => {
    stack = await startTestStack({ workers: 2 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it(
    'ends each file as the corpus README says, and the workers survive all of them',
    async () => {
      token = await stack.token(stack.user('corpus'), 'TEACHER');
      courseId = await createCourse(stack, token, 'Corpus');
      const started = [];
      for (const [file, expected] of Object.entries(EXPECTED)) {
        const up = await upload(stack, token, readFileSync(new URL(file, CORPUS)), file);
        expect({ file, status: up.status, body: up.body }).toEqual({
          file,
          status: 201,
          body: expect.objectContaining({ uploadId: expect.any(String) }),
        });
        started.push({ file, expected, task: await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title: file }) });
      }
      for (const { file, expected, task } of started) {
        const done = await waitForTask(stack, token, task.id, (expected.status === 'COMPLETED' && expected.waitMs) || 120_000);
        if (file === 'TAMReview.pdf') tamReview = done.document?.id;
        if (expected.status === 'COMPLETED') {
          expect({
            file,
            status: done.status,
            error: done.error,
            pages: done.document?.pages,
            chunks: (done.document?.chunkCount ?? 0) > 0,
          }).toEqual({
            file,
            status: 'COMPLETED',
            error: null,
            pages: expected.pages,
            chunks: true,
          });
        } else {
          expect({ file, status: done.status, code: done.error?.code }).toEqual({ file, status: 'FAILED', code: expected.code });
        }
      }
      // The workers survive all of them.
      for (const s of Object.values(stack.services))
        expect({ service: s.name, exitCode: s.child.exitCode }).toEqual({ service: s.name, exitCode: null });
    },
    10 * 60_000,
  );

  it('finds passages from TAMReview.pdf’s pages 2-23 by a search for words of those pages', async () => {
    expect(tamReview).toBeDefined(); // ingested by the test above
    const search = async (query: string) => {
      const res = await stack.gql<{ search: { pageStart: number; document: { id: string } }[] }>(
        'query($c: ID!, $q: String!) { search(courseId: $c, query: $q, limit: 10) { pageStart document { id } } }',
        { c: courseId, q: query },
        { token },
      );
      expect(res.body.errors).toBeUndefined();
      return res.body.data!.search.filter((p) => p.document.id === tamReview).map((p) => p.pageStart);
    };
    const doc = await stack.gql<{ document: { ocrPages: number[]; ocrConfidence: number | null; ocrSkippedPages: number[] } }>(
      'query($id: ID!) { document(id: $id) { ocrPages ocrConfidence ocrSkippedPages } }',
      { id: tamReview },
      { token },
    );
    // The pages whose text layer is garbage were read by OCR, confidently; none was skipped.
    expect(doc.body.data?.document).toMatchObject({ ocrPages: Array.from({ length: 21 }, (_, i) => i + 2), ocrSkippedPages: [] });
    expect(doc.body.data!.document.ocrConfidence).toBeGreaterThan(80);

    // Words a reader sees on these pages find them.
    const known: [string, number][] = [
      ['Yasser Chuttur Bloomington', 2],
      ['confused electronic mail system', 7],
      ['Harvard graphics Lotus', 12],
      ['self-reported use data unreliable', 17],
      ['Straub Georgia State University editorial board', 23],
    ];
    for (const [query, page] of known)
      expect({ query, pages: await search(query) }).toEqual({ query, pages: expect.arrayContaining([page]) });

    // And every page 2-23 is found by its own rarest words.
    const chunks = await chunksOf(tamReview!);
    const words = (text: string) => new Set(text.toLowerCase().match(/\p{L}{6,}/gu) ?? []);
    const pageWords = new Map<number, Set<string>>();
    for (const c of chunks) pageWords.set(c.pageStart, new Set([...(pageWords.get(c.pageStart) ?? []), ...words(c.text)]));
    for (let page = 2; page <= 23; page++) {
      const elsewhere = new Set([...pageWords].filter(([p]) => p !== page).flatMap(([, w]) => [...w]));
      const own = [...(pageWords.get(page) ?? [])]
        .filter((w) => !elsewhere.has(w))
        .sort((a, b) => b.length - a.length || a.localeCompare(b));
      const query = own.slice(0, 3).join(' ');
      expect({ page, query: query.length > 0, found: await search(query || 'nothing') }).toEqual({
        page,
        query: true,
        found: expect.arrayContaining([page]),
      });
    }
  });
});
