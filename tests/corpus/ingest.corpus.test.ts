import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { createCourse, ingest, upload, waitForTask } from '../support/ingest.js';
import { startTestStack, type TestStack } from '../support/stack.js';

/** The real PDFs in ../shared/corpus/pdfs and the outcome ../shared/corpus/README.md gives for each. */
const CORPUS = new URL('../../../shared/corpus/pdfs/', import.meta.url);
const EXPECTED: Record<string, { status: 'COMPLETED'; pages: number } | { status: 'FAILED'; code: string }> = {
  'tracemonkey.pdf': { status: 'COMPLETED', pages: 14 },
  // pdfjs extracts 65,000 characters, but pages 2-22 are control characters (fonts without a text mapping).
  'TAMReview.pdf': { status: 'FAILED', code: 'NO_TEXT' },
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
  beforeAll(async () => {
    stack = await startTestStack({ workers: 2 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it(
    'ends each file as the corpus README says, and the workers survive all of them',
    async () => {
      const token = await stack.token(stack.user('corpus'), 'TEACHER');
      const courseId = await createCourse(stack, token, 'Corpus');
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
        const done = await waitForTask(stack, token, task.id, 120_000);
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
});
