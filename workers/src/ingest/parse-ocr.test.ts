import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { processEnv } from '@lib/env.js';
import { makeNoTextPdf, makeScannedPdf, writeFixture } from '../../../tests/support/pdf-fixtures.js';
import { findExecutable, type OcrOptions } from './ocr.js';
import { parseDocument, type ParseOptions } from './parse.js';
import { IngestError } from './types.js';

const TESSERACT = findExecutable('tesseract', processEnv().PATH);
const PDFTOPPM = findExecutable('pdftoppm', processEnv().PATH);
const present = TESSERACT !== null && PDFTOPPM !== null;
if (!present) console.warn('skipped: OCR tests need tesseract (tesseract-ocr, tesseract-ocr-eng) and pdftoppm (poppler-utils)');
const suite = present ? describe : describe.skip;

const limits = { maxPages: 1000, maxChars: 5_000_000, timeoutMs: 60_000, memoryLimitMb: 768 };

/** Three pages, each with words found nowhere else: what a search for a page's text should find. */
const PAGES = [
  ['Photosynthesis converts light energy into chemical energy; the quetzalcoatlus sentence lives on page one.'],
  ['Stomata regulate gas exchange, and the axolotl sentence lives on page two of this scan.'],
  ['Cellular respiration releases the energy stored in glucose; the narwhal sentence closes page three.'],
];

/** Parser processes whose parent is this test process. */
function parsers(): number[] {
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

/** Whether a process still runs (a zombie, killed and waiting to be reaped, does not). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2)[0]!);
  } catch {
    return false;
  }
}

async function eventually(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`still not true after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const settled = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (resolved: unknown) => ({ resolved }),
    (e: unknown) => e,
  );

suite('parseDocument with OCR', () => {
  let dir: string;
  let ocr: OcrOptions;
  /** A "tesseract" that hangs (sleeps) on the page named in `hangFlag`, and is tesseract for the others. */
  let hanging: string;
  let hangFlag: string;
  let hangPid: string;
  /** A "tesseract" that takes 400 MB of memory and waits. */
  let greedy: string;
  const files: Record<string, string> = {};
  const parse = (name: string, extra: Partial<ParseOptions> = {}) =>
    parseDocument({ ...limits, format: 'PDF', path: files[name]!, ocr, ...extra });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parse-ocr-test-'));
    ocr = {
      tesseract: TESSERACT!,
      pdftoppm: PDFTOPPM!,
      languages: 'eng',
      dpi: 200,
      concurrency: 2,
      pageTimeoutMs: 60_000,
      timeoutMs: 300_000,
      minConfidence: 50,
      minChars: 20,
    };
    files.scanned = await writeFixture(join(dir, 'scanned.pdf'), makeScannedPdf(PAGES, { headings: ['Light', null, 'Energy'] }));
    files.mixed = await writeFixture(join(dir, 'mixed.pdf'), makeScannedPdf(PAGES.slice(0, 2), { textPages: [1] }));
    files.blank = await writeFixture(join(dir, 'blank.pdf'), makeNoTextPdf());
    hangFlag = join(dir, 'hang-page');
    hangPid = join(dir, 'hang-pid');
    hanging = join(dir, 'tesseract-hanging.sh');
    await writeFile(
      hanging,
      [
        '#!/bin/sh',
        `case "$1" in */page-$(cat '${hangFlag}' 2>/dev/null).pgm) echo "$$ $1" > '${hangPid}'; exec sleep 600 ;; esac`,
        `exec '${TESSERACT}' "$@"`,
        '',
      ].join('\n'),
    );
    greedy = join(dir, 'tesseract-greedy.sh');
    await writeFile(
      greedy,
      `#!/bin/sh\nexec '${process.execPath}' -e 'globalThis.b = Buffer.alloc(400 * 1024 * 1024, 1); setTimeout(() => {}, 60000)'\n`,
    );
    await chmod(hanging, 0o755);
    await chmod(greedy, 0o755);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** Makes the hanging "tesseract" hang on `page` (and forgets the last hung process). */
  async function hangOn(page: number) {
    await writeFile(hangFlag, String(page));
    await rm(hangPid, { force: true });
  }
  /** The pid of the process hanging in place of tesseract, and the image it was given. */
  async function hung(): Promise<{ pid: number; image: string }> {
    await eventually(() => existsSync(hangPid) && readFileSync(hangPid, 'utf8').endsWith('\n'), 'the hanging tesseract started');
    const [pid, image] = (await readFile(hangPid, 'utf8')).trim().split(' ');
    return { pid: Number(pid), image: image! };
  }

  it('reads a scanned PDF page by page, and says which pages OCR read and how confidently', async () => {
    const ocrStarts: number[] = [];
    const arrivals: [number, number, boolean][] = [];
    const doc = await parse('scanned', {
      onOcrPage: (page, pages) => {
        expect(pages).toBe(3);
        ocrStarts.push(page);
      },
      onPage: (page, _pages, info) => arrivals.push([page, info.received, info.ocr]),
    });
    expect(doc.pages.map((p) => p.page)).toEqual([1, 2, 3]);
    const [p1, p2, p3] = doc.pages.map((p) => p.text);
    expect(p1).toMatch(/^# Light\n\nPhotosynthesis converts light energy into chemical energy; the quetzalcoatlus sentence/);
    expect(p2).toMatch(/axolotl sentence lives on page two/);
    expect(p3).toMatch(/^# Energy\n\n.*narwhal sentence/s);
    expect(doc.ocr.pages).toEqual([1, 2, 3]);
    expect(doc.ocr.confidence).toBeGreaterThan(80);
    expect(doc.ocr.skipped).toEqual([]);
    expect(doc.ocr.blank).toEqual([]);
    expect([...ocrStarts].sort()).toEqual([1, 2, 3]);
    // Every page arrived once, counted, marked as OCR'd.
    expect(arrivals.map(([page]) => page).sort()).toEqual([1, 2, 3]);
    expect(arrivals.map(([, received, isOcr]) => [received, isOcr])).toEqual([
      [1, true],
      [2, true],
      [3, true],
    ]);
    expect(doc.peakRssMb).toBeGreaterThan(10);
    expect(parsers()).toEqual([]);
  });

  it('reads a mixed PDF: the text page from its text layer, the image page by OCR', async () => {
    const doc = await parse('mixed');
    expect(doc.pages.map((p) => p.page)).toEqual([1, 2]);
    expect(doc.pages[0]!.text.replace(/\n/g, ' ')).toBe(PAGES[0]![0]);
    expect(doc.pages[1]!.text).toMatch(/Stomata regulate gas exchange, and the axolotl sentence lives on page two/);
    expect(doc.ocr.pages).toEqual([2]);
    expect(doc.ocr.confidence).toBeGreaterThan(80);
  });

  it('fails a PDF whose pages OCR finds blank with NO_TEXT, saying OCR found no text', async () => {
    const err = await settled(parse('blank'));
    expect(err).toBeInstanceOf(IngestError);
    expect(err).toMatchObject({ code: 'NO_TEXT', message: expect.stringMatching(/OCR found no text on its pages: they look blank/) });
  });

  it('with OCR off, fails a scanned PDF with NO_TEXT, saying OCR is off', async () => {
    const err = await settled(parse('scanned', { ocr: null }));
    expect(err).toMatchObject({ code: 'NO_TEXT', message: expect.stringMatching(/no text layer.*OCR\) is turned off/s) });
  });

  it('kills a page that hangs the OCR engine at the page time limit, skips it and reads the others', async () => {
    await hangOn(2);
    const pending = parse('scanned', { ocr: { ...ocr, tesseract: hanging, pageTimeoutMs: 8000 } });
    const { pid } = await hung();
    const doc = await pending;
    expect(doc.ocr.pages).toEqual([1, 3]);
    expect(doc.ocr.skipped).toEqual([{ page: 2, reason: 'over the page time limit of 8000 ms' }]);
    expect(doc.pages[1]).toEqual({ page: 2, text: '' });
    expect(doc.pages[2]!.text).toMatch(/narwhal/);
    expect(running(pid)).toBe(false);
  });

  it('fails with NO_TEXT, saying OCR could not read them, when every page is skipped', async () => {
    const err = await settled(parse('scanned', { ocr: { ...ocr, minConfidence: 99.9 } }));
    expect(err).toMatchObject({
      code: 'NO_TEXT',
      message: expect.stringMatching(/OCR could not read 3 pages of it well enough/),
      cause: expect.stringMatching(/^page 1: confidence [\d.]+ below 99.9; page 2: .*; page 3: /),
    });
  });

  it("stops at the document's OCR time limit with TIMEOUT, leaving no OCR process and no scratch files", async () => {
    await hangOn(1);
    // 5 s for the parser, then 3 s for OCR: the hanging page is still being read.
    const err = await settled(parse('scanned', { timeoutMs: 5000, ocr: { ...ocr, tesseract: hanging, concurrency: 1, timeoutMs: 3000 } }));
    expect(err).toMatchObject({ code: 'TIMEOUT', cause: 'OCR time limit' });
    const { pid, image } = await hung();
    expect(running(pid)).toBe(false);
    expect(existsSync(dirname(image))).toBe(false);
    expect(parsers()).toEqual([]);
  });

  it('kills the OCR programs and removes their scratch files when the signal aborts mid-OCR', async () => {
    await hangOn(1);
    const controller = new AbortController();
    const pending = settled(parse('scanned', { ocr: { ...ocr, tesseract: hanging }, signal: controller.signal }));
    const { pid, image } = await hung();
    expect(existsSync(dirname(image))).toBe(true);
    controller.abort();
    expect(await pending).toBe(controller.signal.reason);
    expect(running(pid)).toBe(false);
    expect(existsSync(dirname(image))).toBe(false);
    expect(parsers()).toEqual([]);
  });

  it("counts the OCR programs' memory against memoryLimitMb", async () => {
    const err = await settled(parse('scanned', { memoryLimitMb: 400, ocr: { ...ocr, tesseract: greedy, concurrency: 1 } }));
    expect(err).toMatchObject({ code: 'TOO_LARGE', cause: expect.stringMatching(/parser RSS \d+ MB above the 400 MB limit/) });
    expect(parsers()).toEqual([]);
  });
});
