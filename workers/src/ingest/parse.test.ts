import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  makeCompressionBombPdf,
  makeEncryptedPdf,
  makeLargePdf,
  makeNoTextPdf,
  makeTextPdf,
  truncate,
  writeFixture,
} from '../../../tests/support/pdf-fixtures.js';
import { parseDocument, parseText, type ParseOptions } from './parse.js';
import { IngestError, type IngestErrorCode } from './types.js';

const limits = { maxPages: 1000, maxChars: 5_000_000, timeoutMs: 20_000, memoryLimitMb: 512 };

/** Parser processes whose parent is this test process (tsx may have an esbuild child of its own). */
function children(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('parse-child')) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** What a promise settled with: a rejection's reason, or `{ resolved }` so that a success fails any error check and shows its value. */
const settled = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (resolved: unknown) => ({ resolved }),
    (e: unknown) => e,
  );

async function rejectsWith(promise: Promise<unknown>, code: IngestErrorCode, message?: RegExp): Promise<IngestError> {
  const err = await settled(promise);
  expect(err).toBeInstanceOf(IngestError);
  const { code: actual, message: text, cause } = err as IngestError;
  // Message and cause come along so that a wrong code shows why.
  expect({ code: actual, message: text, cause: String(cause) }).toMatchObject({ code });
  if (message) expect(text).toMatch(message);
  expect(children()).toEqual([]); // the parser process is gone
  return err as IngestError;
}

describe('parseDocument', () => {
  let dir: string;
  const files: Record<string, string> = {};
  const parse = (name: string, extra: Partial<ParseOptions> = {}) =>
    parseDocument({ ...limits, format: 'PDF', path: files[name]!, ...extra });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parse-test-'));
    const threePages = await makeTextPdf(
      [
        ['Alpha aardvark opens the first page.', 'A second paragraph on page one.'],
        ['Bravo bumblebee lives on page two.'],
        ['Charlie chinchilla closes on page three.'],
      ],
      { title: 'Animals', headings: ['Mammals', null, 'Rodents'] },
    );
    files.three = await writeFixture(join(dir, 'three.pdf'), threePages);
    files.truncated = await writeFixture(join(dir, 'truncated.pdf'), truncate(threePages, 0.5));
    files.encrypted = await writeFixture(join(dir, 'encrypted.pdf'), makeEncryptedPdf());
    files.noText = await writeFixture(join(dir, 'no-text.pdf'), makeNoTextPdf());
    files.large = await writeFixture(join(dir, 'large.pdf'), makeLargePdf(300));
    files.bomb = await writeFixture(join(dir, 'bomb.pdf'), makeCompressionBombPdf(300));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('extracts each page of a generated PDF onto its own page, with title and headings', async () => {
    const progress: [number, number][] = [];
    const doc = await parse('three', { onPage: (page, pages) => progress.push([page, pages]) });
    expect(doc.format).toBe('PDF');
    expect(doc.title).toBe('Animals');
    expect(doc.pages.map((p) => p.page)).toEqual([1, 2, 3]);
    const [p1, p2, p3] = doc.pages.map((p) => p.text);
    expect(p1).toBe('# Mammals\n\nAlpha aardvark opens the first page.\n\nA second paragraph on page one.');
    expect(p2).toBe('Bravo bumblebee lives on page two.');
    expect(p3).toBe('# Rodents\n\nCharlie chinchilla closes on page three.');
    expect(progress).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
    expect(doc.peakRssMb).toBeGreaterThan(10);
    expect(doc.peakRssMb).toBeLessThan(limits.memoryLimitMb);
    expect(doc.unreadablePages).toEqual([]);
    expect(children()).toEqual([]);
  });

  it('refuses a password-protected PDF with ENCRYPTED_PDF', async () => {
    await rejectsWith(parse('encrypted'), 'ENCRYPTED_PDF', /password/);
  });

  it('refuses a truncated PDF with MALFORMED_FILE', async () => {
    const err = await rejectsWith(parse('truncated'), 'MALFORMED_FILE', /damaged/);
    expect(String(err.cause)).toMatch(/InvalidPDFException/);
  });

  it('refuses a PDF without a text layer with NO_TEXT, naming OCR', async () => {
    await rejectsWith(parse('noText'), 'NO_TEXT', /no text layer.*OCR\) is turned off/s);
  });

  it('stops at the page count, before extracting any text, when maxPages is exceeded', async () => {
    let pagesSeen = 0;
    const started = Date.now();
    await rejectsWith(parse('large', { maxPages: 50, onPage: () => pagesSeen++ }), 'TOO_LARGE', /300 pages; the limit is 50/);
    expect(pagesSeen).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('stops with TOO_LARGE when the text exceeds maxChars', async () => {
    await rejectsWith(parse('three', { maxChars: 60 }), 'TOO_LARGE', /more than 60 characters/);
  });

  it('kills a parse that outlasts timeoutMs with TIMEOUT', async () => {
    const started = Date.now();
    await rejectsWith(parse('large', { timeoutMs: 700 }), 'TIMEOUT', /took too long/);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(650);
    expect(elapsed).toBeLessThan(3000);
  });

  it('kills a parser that goes over memoryLimitMb with TOO_LARGE, and this process carries on', async () => {
    const err = await rejectsWith(parse('large', { memoryLimitMb: 40 }), 'TOO_LARGE', /more memory than allowed/);
    expect(String(err.cause)).toMatch(/above the 40 MB limit/);
  });

  it('kills a compression bomb mid-parse when it crosses memoryLimitMb', async () => {
    const started = Date.now();
    const err = await rejectsWith(parse('bomb', { memoryLimitMb: 250 }), 'TOO_LARGE', /more memory than allowed/);
    expect(String(err.cause)).toMatch(/parser RSS \d+ MB above the 250 MB limit/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('kills the parser when the signal aborts and rejects with its reason', async () => {
    const controller = new AbortController();
    const pending = parse('large', {
      signal: controller.signal,
      onPage: (page) => {
        if (page === 2) controller.abort();
      },
    });
    const err = await settled(pending);
    expect(err).toBe(controller.signal.reason);
    expect((err as Error).name).toBe('AbortError');
    expect(children()).toEqual([]);
    // Already aborted: no process at all.
    await expect(parse('three', { signal: AbortSignal.abort(new Error('cancelled by test')) })).rejects.toThrow(/cancelled by test/);
  });

  it('reports a parser that dies from a signal mid-parse as MALFORMED_FILE', async () => {
    await rejectsWith(
      parse('large', {
        onPage: (page) => {
          if (page === 3) for (const pid of children()) process.kill(pid, 'SIGSEGV');
        },
      }),
      'MALFORMED_FILE',
      /reader fail/,
    );
  });

  it('reads Markdown as one page, keeping # headings and the front-matter title', async () => {
    const md = '---\ntitle: Cell Biology\n---\n\n# Cells\r\n\r\nCells are the unit of life.\n\n```sh\n# a comment\n```\n';
    const doc = await parseText(md, { ...limits, format: 'MARKDOWN' });
    expect(doc.title).toBe('Cell Biology');
    expect(doc.pages.length).toBe(1);
    expect(doc.pages[0]!.text).toBe('---\ntitle: Cell Biology\n---\n\n# Cells\n\nCells are the unit of life.\n\n```sh\n# a comment\n```');
  });

  it('turns HTML into text with # headings, list lines and decoded entities, without scripts or styles', async () => {
    const html = `<!doctype html><html><head><title>Caf&eacute; Science</title><style>h1 { color: red }</style></head>
      <body><script>alert("x")</script><h1>Energy &amp; Matter</h1><p>Plants store energy.<br>Animals eat plants.</p>
      <h2>Terms</h2><ul><li>ATP</li><li>Glucose &lt;C<sub>6</sub>H<sub>12</sub>O<sub>6</sub>&gt;</li></ul></body></html>`;
    const path = join(dir, 'page.html');
    await writeFile(path, html);
    const doc = await parseDocument({ ...limits, path, format: 'HTML' });
    expect(doc.title).toBe('Café Science');
    expect(doc.pages[0]!.text).toBe(
      '# Energy & Matter\n\nPlants store energy.\nAnimals eat plants.\n\n## Terms\n\n- ATP\n- Glucose <C6H12O6>',
    );
  });

  it('refuses binary, non-UTF-8 and empty text files with specific codes', async () => {
    const write = async (name: string, bytes: Buffer) => {
      const path = join(dir, name);
      await writeFile(path, bytes);
      return path;
    };
    const binary = await write('binary.txt', Buffer.from([0x48, 0x69, 0x00, 0x01, 0x02, 0xff, 0x00]));
    await rejectsWith(parseDocument({ ...limits, path: binary, format: 'TEXT' }), 'UNSUPPORTED_TYPE', /binary/);
    const latin1 = await write('latin1.txt', Buffer.from('Caf\xe9 au lait', 'latin1'));
    await rejectsWith(parseDocument({ ...limits, path: latin1, format: 'TEXT' }), 'MALFORMED_FILE', /UTF-8/);
    const pdfAsText = await write('really.txt', readFileSync(files.three!));
    await rejectsWith(parseDocument({ ...limits, path: pdfAsText, format: 'TEXT' }), 'UNSUPPORTED_TYPE', /is a PDF/);
    const blank = await write('blank.md', Buffer.from('\ufeff  \n\n \t\n'));
    await rejectsWith(parseDocument({ ...limits, path: blank, format: 'MARKDOWN' }), 'NO_TEXT', /no text/);
  });

  it('still parses normally afterwards, several files at once', async () => {
    const docs = await Promise.all([
      parse('three'),
      parse('three'),
      parseText('Plain text. Second sentence.', { ...limits, format: 'TEXT' }),
    ]);
    expect(docs[0].pages[1]!.text).toBe('Bravo bumblebee lives on page two.');
    expect(docs[0].pages).toStrictEqual(docs[1].pages);
    expect(docs[2].pages[0]!.text).toBe('Plain text. Second sentence.');
    expect(children()).toEqual([]);
  });
});
